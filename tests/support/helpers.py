"""What tests share: the raw telnet client (``raw_client``, in benchmarks/,
shared with the attack kit), running blocking calls off the monitored loop,
polls with deadlines, and tasks parked the framework's own way.

The client blocks, so async tests drive it from a worker thread
(``in_thread``); the test's own event loop is the monitored app and must
stay free to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio
from raw_client import CONSOLE_PROMPT, DEADLINE, PROMPT, Client, text

T = TypeVar("T")

__all__ = ("CONSOLE_PROMPT", "DEADLINE", "PROMPT", "Client", "text")  # re-exported for the tests


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
