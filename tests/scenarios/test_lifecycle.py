"""start/close, ports, threads, unix sockets, passwords and exposure."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

import aiomonitor

from ..conftest import open_monitor
from ..support.helpers import PROMPT, Client, in_thread, open_fds, poll

pytestmark = pytest.mark.anyio


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("aiomonitor")]


def test_documented_defaults() -> None:
    assert aiomonitor.MONITOR_HOST == "127.0.0.1"
    assert aiomonitor.MONITOR_PORT == 50101
    assert aiomonitor.CONSOLE_PORT == 50102
    loop = asyncio.new_event_loop()
    try:
        monitor = aiomonitor.Monitor(loop)
        assert monitor.prompt == "monitor >>> "
        assert monitor.port == 50101 and monitor.console_port == 50102
        assert not monitor.closed
        assert monitor.lastcmd is None
        monitor._sout.write("outside any session: accepted and dropped\n")
        monitor.close()
        assert monitor.closed
    finally:
        loop.close()


async def test_close_joins_the_thread_and_frees_the_ports(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor:
        ports = (monitor.port, monitor.console_port)
        assert sorted(t.name for t in monitor_threads()) == [
            "aiomonitor-server",
            "aiomonitor-stalls",
            "aiomonitor-trend",
        ]
        assert not port_is_free(ports[0])
    assert monitor.closed
    assert not any(t.name in ("aiomonitor-server", "aiomonitor-stalls", "aiomonitor-trend") for t in monitor_threads())
    assert await in_thread(poll, lambda: monitor_threads() == [])  # workers end just after
    assert all(port_is_free(port) for port in ports)
    monitor.close()  # idempotent


async def test_a_taken_port_is_a_prompt_oserror_with_nothing_left_running(anyio_backend_name: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        fds = open_fds()
        started = time.monotonic()
        with pytest.raises(OSError, match="in use"), open_monitor(anyio_backend_name, port=port):
            pass
        assert time.monotonic() - started < 2
        with pytest.raises(OSError, match="in use"), open_monitor(anyio_backend_name, console_port=port):
            pass
        assert monitor_threads() == []
        assert open_fds() == fds


async def test_start_twice_and_restart_after_close_are_errors(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor, pytest.raises(RuntimeError, match="already started"):
        monitor.start()
    with pytest.raises(RuntimeError, match="closed"):
        monitor.start()


async def test_close_with_clients_connected_tells_them_and_returns_quickly(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor:
        first, second = Client(monitor.port), Client(monitor.port)
        await in_thread(first.start)
        await in_thread(second.start)
        started = time.monotonic()
    elapsed = time.monotonic() - started
    for client in (first, second):
        farewell = await in_thread(client.read_to_eof)
        assert b"The monitor is shutting down; bye." in farewell
        client.close()
    assert elapsed < 1.5
    assert await in_thread(poll, lambda: monitor_threads() == [])


class SelfClosingMonitor(aiomonitor.Monitor):
    def do_shutdown(self) -> None:
        """Close the monitor from inside a command"""
        self._sout.write("closing\n")
        self.close()


async def test_close_from_inside_a_command(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=SelfClosingMonitor) as monitor:
        with Client(monitor.port) as client:
            await in_thread(client.start)
            client.send(b"shutdown\r\n")
            rest = await in_thread(client.read_to_eof)
        assert b"closing" in rest
        assert monitor.closed
        assert await in_thread(poll, lambda: monitor_threads() == [])
        assert port_is_free(monitor.port)


async def test_unix_socket_is_private_and_removed_on_close(anyio_backend_name: str, tmp_path: Path) -> None:
    path = str(tmp_path / "monitor.sock")
    console_path = str(tmp_path / "console.sock")
    with open_monitor(anyio_backend_name, path=path, console_path=console_path) as monitor:
        for sock_path in (path, console_path):
            mode = os.stat(sock_path).st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o600
        with Client(path=path) as client:
            assert "Monitor" in await in_thread(client.start)
            assert (await in_thread(client.command, "help ps")).startswith("ps ")
        with Client(path=console_path) as console:
            await in_thread(console.start, b">>> ")
            assert await in_thread(console.command, "6 * 7", b">>> ") == "42\n"
        assert monitor.port == 0  # no TCP port was opened
    assert not os.path.exists(path) and not os.path.exists(console_path)


async def test_a_live_unix_socket_is_not_stolen(anyio_backend_name: str, tmp_path: Path) -> None:
    path = str(tmp_path / "monitor.sock")
    with open_monitor(anyio_backend_name, path=path, console_enabled=False):
        with (
            pytest.raises(OSError, match="another process is listening"),
            open_monitor(anyio_backend_name, path=path, console_enabled=False),
        ):
            pass
        assert os.path.exists(path)


async def test_password_protects_both_ports(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, password="s3cret") as monitor:
        with Client(monitor.port) as client:
            await in_thread(client.read_until, b"Password: ")
            client.send(b"guess\r\n")
            await in_thread(client.read_until, b"Wrong password.\r\nPassword: ")
            client.send(b"s3cret\r\n")
            assert "Monitor" in await in_thread(client.start)
        with Client(monitor.port) as client:
            client.send(b"a\r\nb\r\nc\r\n")
            refused = await in_thread(client.read_to_eof)
            assert refused.endswith(b"Too many failed attempts; bye.\r\n")
            assert PROMPT not in refused
        with Client(monitor.console_port) as console:
            await in_thread(console.read_until, b"Password: ")
            console.send(b"s3cret\r\n")
            await in_thread(console.read_until, b">>> ")


async def test_a_non_loopback_bind_is_warned_about(anyio_backend_name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aiomonitor"):
        with open_monitor(anyio_backend_name, host="0.0.0.0", console_enabled=False):
            pass
    assert any("reachable from other machines" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aiomonitor"), open_monitor(anyio_backend_name):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_two_monitors_in_one_process_are_independent(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as first, open_monitor(anyio_backend_name) as second:
        with Client(first.port) as a, Client(second.port) as b:
            await in_thread(a.start)
            await in_thread(b.start)
            assert await in_thread(a.command, "help exit") != ""
            assert await in_thread(b.command, "") == ""  # b's lastcmd is its own (none)
