"""A raw-socket client for tests: the bytes a telnet or nc user would send.

It blocks, so async tests drive it from a worker thread (``in_thread``); the
test's own event loop is the monitored app and must stay free to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

PROMPT = b"monitor >>> "
CONSOLE_PROMPT = b">>> "
DEADLINE = 15.0


class Client:
    """One connection to a monitor, reading up to markers with deadlines."""

    def __init__(self, port: int | None = None, *, path: str | None = None, host: str = "127.0.0.1") -> None:
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
        else:
            assert port is not None
            self.sock = socket.create_connection((host, port), timeout=DEADLINE)
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; received so far: {bytes(self.buffer[-2000:])!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            raise AssertionError(f"timed out; received so far: {bytes(self.buffer[-2000:])!r}") from None
        if not data:
            self.eof = True
        self.buffer += data

    def read_until(self, marker: bytes, timeout: float = DEADLINE) -> bytes:
        """Everything up to and including *marker* (linear in what arrives: answers are megabytes)."""
        deadline = time.monotonic() + timeout
        searched = 0
        while (found := self.buffer.find(marker, searched)) < 0:
            if self.eof:
                raise AssertionError(f"connection closed before {marker!r}; got {bytes(self.buffer[-2000:])!r}")
            searched = max(0, len(self.buffer) - len(marker) + 1)
            self._fill(deadline)
        end = found + len(marker)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def read_to_eof(self, timeout: float = DEADLINE) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def start(self, prompt: bytes = PROMPT) -> str:
        """Read the greeting up to the first prompt."""
        return text(self.read_until(prompt))

    def command(self, line: str, prompt: bytes = PROMPT, timeout: float = DEADLINE) -> str:
        """Send one line (as telnet does, CR LF) and return the output before the next prompt."""
        self.send(line.encode() + b"\r\n")
        return text(self.read_until(prompt, timeout))[: -len(prompt)]


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run a blocking client call off the monitored loop."""
    return await anyio.to_thread.run_sync(func, *args)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if sys.platform == "linux" else 0


def poll(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll with a deadline (for effects in other threads or processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def park(name: str, started: Callable[[], None], cancelled: list[str]) -> None:
    """A task that waits forever and records its own cancellation."""
    started()
    try:
        await anyio.sleep(3600)  # parked-line
    except anyio.get_cancelled_exc_class():
        cancelled.append(name)
        raise


@contextlib.asynccontextmanager
async def parked_tasks(backend_name: str, *names: str) -> AsyncIterator[list[str]]:
    """Tasks spawned the framework's own way (not anyio's task group, whose
    group-wide reaction to one child's cancellation would hide what we test).
    Yields the list of the names of tasks that got cancelled."""
    cancelled: list[str] = []
    if backend_name == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for name in names:
                await nursery.start(_trio_park, name, cancelled, name=name)
            yield cancelled
            nursery.cancel_scope.cancel()
        return
    loop = asyncio.get_running_loop()
    started = [asyncio.Event() for _ in names]
    tasks = [
        loop.create_task(park(name, event.set, cancelled), name=name)
        for name, event in zip(names, started, strict=True)
    ]
    for event in started:
        await event.wait()
    try:
        yield cancelled
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _trio_park(name: str, cancelled: list[str], *, task_status: Any) -> None:
    await park(name, lambda: task_status.started(), cancelled)


@contextlib.contextmanager
def classic_loop_thread(
    make_monitor: Callable[[asyncio.AbstractEventLoop], Any],
) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    """The classic 0.4 pattern: a loop run with ``run_forever`` in its own
    thread, inside ``with monitor:``.  Yields the monitor and the loop; stops
    and closes both afterwards."""
    loop = asyncio.new_event_loop()
    monitor = make_monitor(loop)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        with monitor:
            started.set()
            loop.run_forever()

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(DEADLINE)
    try:
        yield monitor, loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(DEADLINE)
        loop.close()
