"""Attacks on a monitor, shared by tests/scenarios/test_hostile.py and benchmarks/hostile.py.

:class:`HostileApp` runs ``hostile_app.py`` (beside this file) (a heartbeat, a monitor, a
side channel on stdin); the functions below are the attackers, each a
blocking loop for a thread, stopped by an event.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from raw_client import DEADLINE, Client

APP = Path(__file__).resolve().with_name("hostile_app.py")
PASSWORD = "s3cret"


class HostileApp:
    """``hostile_app.py`` running: its monitor port, its side channel, its log."""

    def __init__(self, *args: str) -> None:
        self._log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, str(APP), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        banner = self._line()
        match = re.search(r"monitor on 127\.0\.0\.1:(\d+)", banner)
        assert match, f"the app did not start: {banner!r} {self.log()}"
        self.port = int(match.group(1))

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline()  # bounded: every request is answered (faulthandler guards)

    def request(self, line: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._line().strip()

    def tick_rate(self, seconds: float) -> float:
        """The heartbeat's ticks per second over a window of *seconds*."""
        ticks0, at0 = map(float, self.request("ticks").split())
        time.sleep(seconds)  # a measurement window, not a synchronisation
        ticks1, at1 = map(float, self.request("ticks").split())
        return (ticks1 - ticks0) / (at1 - at0)

    def monitor_cpu_share(self, seconds: float) -> float:
        """The share of one core the monitor's threads used over a window of *seconds*."""
        spent0, at0 = map(float, self.request("cpu").split())
        time.sleep(seconds)  # a measurement window, not a synchronisation
        spent1, at1 = map(float, self.request("cpu").split())
        return (spent1 - spent0) / (at1 - at0)

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=DEADLINE)
        for stream in (self.process.stdin, self.process.stdout, self._log):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def hostile_app(*args: str) -> Iterator[HostileApp]:
    app = HostileApp(*args)
    try:
        yield app
    finally:
        app.close()


def log_in(port: int, password: str = PASSWORD) -> Client:
    client = Client(port)
    client.read_until(b"Password: ")
    client.send(password.encode() + b"\r\n")
    client.start()
    return client


def flood_block() -> bytes:
    """64 KiB of what costs a telnet parser most: NULs and IAC sequences."""
    unit = b"\0" * 64 + b"\xff\xf1" * 16 + b"\xff\xfd\x06" + b"\xff\xfb\x18" + b"\xff\xfa\x1f" + b"\0" * 8 + b"\xff\xf0"
    return (unit * (65536 // len(unit) + 1))[:65536]


def flood(port: int, stop: threading.Event, hung_up: list[int]) -> None:
    """One client streaming junk before any password, reconnecting whenever it is dropped."""
    block = flood_block()
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            try:
                while not stop.is_set():
                    sock.sendall(block)
            except OSError:
                hung_up.append(1)


def guess(port: int, stop: threading.Event, answered: list[int]) -> None:
    """One client guessing passwords as fast as it is answered, reconnecting when dropped."""
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            reader = sock.makefile("rb")
            with contextlib.suppress(OSError):
                while not stop.is_set():
                    sock.sendall(b"wrong\r\n")
                    reply = reader.readline()
                    if not reply:
                        break
                    if b"Wrong password" in reply:
                        answered.append(1)


Attacker = Callable[[int, threading.Event, list[int]], None]


@contextlib.contextmanager
def attackers(attacker: Attacker, count: int, port: int, tally: list[int]) -> Iterator[None]:
    """*count* threads running *attacker* on *port*, counting into *tally*; stopped on exit."""
    stop = threading.Event()
    threads = [threading.Thread(target=attacker, args=(port, stop, tally)) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(DEADLINE * 2)


@contextlib.contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """*count* connections that never send a byte (connects complete in the kernel)."""
    idle: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            idle.append(sock)
        yield idle
    finally:
        for sock in idle:
            sock.close()
