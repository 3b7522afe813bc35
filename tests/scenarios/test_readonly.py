"""A read-only monitor: it shows everything and changes nothing, over real sockets."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aiomonitor
from aiomonitor.utils import readonly

from ..conftest import open_monitor
from ..support.helpers import CONSOLE_PROMPT, Client, in_thread, parked_tasks, poll

PROGRAMS = Path(__file__).parent.parent / "support" / "programs"

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


def test_every_change_is_audited_in_the_log_and_in_audit() -> None:
    app = subprocess.Popen(
        [sys.executable, str(PROGRAMS / "audited.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        port, _console_port = map(int, app.stdout.readline().split()[-2:])
        with Client(port) as client:
            client.start()
            peer = "{}:{}".format(*client.sock.getsockname())
            assert "Cancelled task" in client.command("cancel victim")
            client.command("console", prompt=CONSOLE_PROMPT)
            assert client.command("6 * 7", prompt=CONSOLE_PROMPT) == "42\n"
            client.command("exit()")
            shown = client.command("audit")
    finally:
        _, log = app.communicate("", timeout=60)
    cancel_line = next(line for line in log.splitlines() if ": cancel task " in line)
    assert peer in cancel_line and "(victim)" in cancel_line and "Cancelled task" in cancel_line
    assert "(session 1)" in cancel_line and cancel_line.startswith("aiomonitor.audit ")
    console_line = next(line for line in log.splitlines() if ": console " in line)
    assert "6 * 7: done" in console_line and peer in console_line
    assert "cancel task" in shown and "(victim)" in shown and "console 6 * 7: done" in shown


async def test_a_unix_socket_turns_away_other_users_before_the_prompt(
    anyio_backend_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiomonitor.audit")
    path = str(tmp_path / "monitor.sock")
    others_only = {os.getuid() + 4242}
    with open_monitor(anyio_backend_name, path=path, allowed_uids=others_only):
        with Client(path=path) as refused:
            farewell = await in_thread(refused.read_to_eof)
        assert b"Not allowed for this user" in farewell and b"monitor >>>" not in farewell
        assert f"uid {os.getuid()} pid {os.getpid()}: connect: refused: uid not allowed" in caplog.text
    with open_monitor(anyio_backend_name, path=path), Client(path=path) as welcome:  # the default: us
        await in_thread(welcome.start)
        assert f"uid {os.getuid()} pid {os.getpid()} (you)" in await in_thread(welcome.command, "who")


async def test_the_console_port_needs_the_control_password(anyio_backend_name: str) -> None:
    options = {"password": "reader", "control_password": "admin"}
    with open_monitor(anyio_backend_name, **options) as monitor:
        with Client(monitor.console_port) as reader:
            await in_thread(reader.read_until, b"Password: ")
            reader.send(b"reader\r\n")
            farewell = await in_thread(reader.read_to_eof)
        assert b"The console needs the control password; bye." in farewell and b">>> " not in farewell
        with Client(monitor.console_port) as admin:
            await in_thread(admin.read_until, b"Password: ")
            admin.send(b"admin\r\n")
            await in_thread(admin.start, CONSOLE_PROMPT)
            assert await in_thread(lambda: admin.command("6 * 7", prompt=CONSOLE_PROMPT)) == "42\n"
