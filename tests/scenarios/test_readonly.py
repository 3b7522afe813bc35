"""A read-only monitor: it shows everything and changes nothing, over real sockets."""

from __future__ import annotations

import signal
import socket
import time

import pytest

import aiomonitor
from aiomonitor.utils import readonly

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread, parked_tasks, poll

pytestmark = pytest.mark.anyio


class Custom(aiomonitor.Monitor):
    def do_reset(self) -> None:
        """Reset something in the app (nobody can tell it changes nothing)"""
        self._sout.write("reset done\n")

    @readonly
    def do_count(self) -> None:
        """Count something, changing nothing"""
        self._sout.write("counted 3\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_read_only_monitor_refuses_every_change(anyio_backend_name: str) -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda number, _frame: received.append(number))
    console_port = free_port()
    try:
        async with parked_tasks(anyio_backend_name, "keeps-running") as cancelled:
            with open_monitor(anyio_backend_name, monitor=Custom, readonly=True, console_port=console_port) as monitor:
                with Client(monitor.port) as client:
                    await in_thread(client.start)
                    answers = {
                        line: await in_thread(client.command, line)
                        for line in ("cancel keeps-running", "signal SIGUSR2", "console", "reset", "count", "help")
                    }
                    still_there = await in_thread(client.command, "ps keeps-running")
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", console_port), timeout=5).close()
            assert cancelled == []
    finally:
        signal.signal(signal.SIGUSR2, previous)
    for command in ("cancel", "signal", "console", "reset"):
        line = next(text for key, text in answers.items() if key.startswith(command))
        assert line == f"{command} is disabled: this monitor is read-only\n"
    assert answers["count"] == "counted 3\n"
    assert received == []
    assert "keeps-running" in still_there
    help_lines = answers["help"].splitlines()
    assert any(line.strip().startswith("cancel") and line.endswith("(disabled: read-only)") for line in help_lines)
    assert any(line.strip().startswith("ps") and "disabled" not in line for line in help_lines)


async def test_a_monitor_not_read_only_runs_them(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=Custom) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "reset") == "reset done\n"
        assert "disabled" not in await in_thread(client.command, "help")


async def test_two_passwords_read_only_until_control(anyio_backend_name: str) -> None:
    from aiomonitor._server._door import FAILURE_DELAY

    options = {"password": "reader", "control_password": "admin"}
    with open_monitor(anyio_backend_name, **options) as monitor:  # first: trio cancels tasks spawned after it
        async with parked_tasks(anyio_backend_name, "target-one", "target-two") as cancelled:
            with Client(monitor.port) as reader:
                await in_thread(reader.read_until, b"Password: ")
                reader.send(b"reader\r\n")
                await in_thread(reader.start)
                refused = await in_thread(reader.command, "cancel target-one")
                assert refused == "cancel needs control: type control, then the control password\n"
                assert "(disabled: read-only)" in await in_thread(reader.command, "help")
                reader.send(b"control\r\n")
                await in_thread(reader.read_until, b"Control password: ")
                started = time.monotonic()
                wrong = await in_thread(reader.command, "guess")
                assert wrong == "Wrong control password.\n"
                assert time.monotonic() - started >= FAILURE_DELAY  # throttled like a wrong login
                reader.send(b"control\r\n")
                await in_thread(reader.read_until, b"Control password: ")
                assert await in_thread(reader.command, "admin") == "This session has control now.\n"
                assert "Cancelled task" in await in_thread(reader.command, "cancel target-one")
            with Client(monitor.port) as admin:  # the control password opens control at once
                await in_thread(admin.read_until, b"Password: ")
                admin.send(b"admin\r\n")
                await in_thread(admin.start)
                assert "Cancelled task" in await in_thread(admin.command, "cancel target-two")
            assert await in_thread(poll, lambda: sorted(cancelled) == ["target-one", "target-two"])
