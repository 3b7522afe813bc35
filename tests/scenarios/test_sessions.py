"""Several clients at once: each has its own output and state."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest

import aiomonitor

from ..conftest import open_monitor
from ..support.helpers import PROMPT, Client, in_thread, poll

pytestmark = pytest.mark.anyio


class GateMonitor(aiomonitor.Monitor):
    """``hold`` writes, waits for the test to open the gate, writes again."""

    gate: threading.Event
    holding: threading.Event

    def do_hold(self) -> None:
        """Write, wait on the gate, write"""
        self._sout.write("hold: before\n")
        self.holding.set()
        self.gate.wait(10)
        self._sout.write("hold: after\n")

    def do_mark(self, word: str) -> None:
        """Write a word"""
        self._sout.write(f"mark: {word}\n")


@pytest.fixture
async def gated(anyio_backend_name: str) -> AsyncIterator[GateMonitor]:
    with open_monitor(anyio_backend_name, monitor=GateMonitor) as monitor:
        assert isinstance(monitor, GateMonitor)
        monitor.gate = threading.Event()
        monitor.holding = threading.Event()
        yield monitor


async def test_output_never_crosses_sessions(gated: GateMonitor) -> None:
    with Client(gated.port) as first, Client(gated.port) as second:
        await in_thread(first.start)
        await in_thread(second.start)
        first.send(b"hold\r\n")
        assert await in_thread(gated.holding.wait, 10)
        # While the first client's command is in the middle, the second works.
        assert await in_thread(second.command, "mark two") == "mark: two\n"
        gated.gate.set()
        held = await in_thread(first.read_until, PROMPT)
    assert held == b"hold: before\r\nhold: after\r\n" + PROMPT


async def test_lastcmd_belongs_to_each_session(gated: GateMonitor) -> None:
    with Client(gated.port) as first, Client(gated.port) as second:
        await in_thread(first.start)
        await in_thread(second.start)
        assert await in_thread(first.command, "mark one") == "mark: one\n"
        assert await in_thread(second.command, "mark two") == "mark: two\n"
        assert await in_thread(first.command, "") == "mark: one\n"
        assert await in_thread(second.command, "") == "mark: two\n"


async def test_fifty_clients_at_once(monitor: aiomonitor.Monitor) -> None:
    clients = [Client(monitor.port) for _ in range(50)]
    try:
        for client in clients:
            client.send(b"ps\r\n")
        for client in clients:
            await in_thread(client.start)
            assert "tasks" in (await in_thread(client.read_until, PROMPT)).decode()
    finally:
        for client in clients:
            client.close()


async def test_a_session_cap_refuses_clearly(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, max_sessions=2) as monitor:
        with Client(monitor.port) as first, Client(monitor.port) as second:
            await in_thread(first.start)
            await in_thread(second.start)
            with Client(monitor.port) as third:
                refused = await in_thread(third.read_to_eof)
            assert refused == b"Too many monitor sessions are open; try again later.\r\n"
        # Once they leave (which the server notices asynchronously), there is room again.

        def admitted() -> bool:
            with Client(monitor.port) as fourth:
                return b"Too many" not in fourth.read_until(b"\n", timeout=5)

        assert await in_thread(poll, admitted)
