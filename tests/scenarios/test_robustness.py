"""Nothing a client or a stuck app does can break the monitor or the app."""

from __future__ import annotations

import collections
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiomonitor
from aiomonitor._server._server_thread import _COMMAND_THREADS

from ..conftest import open_monitor
from ..support.helpers import CONSOLE_PROMPT, PROMPT, Client, in_thread, open_fds, poll

pytestmark = pytest.mark.anyio

IAC, DO, DONT, WILL, WONT, SB, SE, IP, AYT = 255, 253, 254, 251, 252, 250, 240, 244, 246
TM, ECHO, TTYPE, NAWS = 6, 1, 24, 31
ANSI_SGR = re.compile(r"\x1b\[[0-9;]*m")


def block_the_loop_until(done: threading.Event) -> None:
    done.wait(30)  # the-blocking-call


def while_loop_blocked(client_side: Callable[[], Any]) -> Any:
    """Block the calling (monitored) loop until *client_side* has run in a thread."""
    result: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            result.append(client_side())
        except BaseException as exc:
            result.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    block_the_loop_until(done)
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


async def test_commands_answer_while_the_loop_is_blocked(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, hop_timeout=0.5) as monitor:
        client = Client(monitor.port)
        await in_thread(client.start)

        def client_side() -> dict[str, Any]:
            started = time.monotonic()
            ps = client.command("ps")
            answered_in = time.monotonic() - started
            task_id = int(re.search(r"It is running task (\d+)", ps).group(1))  # type: ignore[union-attr]
            return {
                "ps": ps,
                "answered_in": answered_in,
                "where": client.command(f"where {task_id}"),
                "cancel": client.command(f"cancel {task_id}"),
                "lag": client.command("lag"),
            }

        with client:
            out = while_loop_blocked(client_side)
            # Once the loop runs again, so does everything else.
            assert "responsive" in await in_thread(client.command, "lag")
    assert out["answered_in"] < 1.5
    assert re.match(r"WARNING: the event loop has been blocked for \d+\.\d s\.\n", out["ps"])
    assert "done.wait(30)  # the-blocking-call" in out["ps"]
    assert re.search(r"\n\d+ tasks\n", out["ps"])  # and still the table
    assert "done.wait(30)  # the-blocking-call" in out["where"]
    assert "did not respond within 0.5 s (is it blocked?)" in out["cancel"]
    assert out["lag"].startswith("WARNING: the event loop has been blocked")


async def test_console_statements_are_withdrawn_when_the_loop_is_blocked(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, hop_timeout=0.3) as monitor:
        console = Client(monitor.console_port)
        await in_thread(console.start, CONSOLE_PROMPT)
        with console:
            reply = while_loop_blocked(lambda: console.command("ran = True", CONSOLE_PROMPT))
            assert await in_thread(console.command, "'ran' in dir()", CONSOLE_PROMPT) == "False\n"
    assert "did not pick up the statement within 0.3 s" in reply
    assert "withdrawn" in reply


async def test_huge_lines_binary_bytes_and_control_keys(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        client.send(b"x" * 70_000 + b"\r\n")
        too_long = await in_thread(client.read_until, PROMPT)
        assert too_long == b"Line too long (over 65536 bytes); ignored.\r\n" + PROMPT
        client.send(b"\x00he\x01lpx\x7f ps\r\n")  # NUL and ^A dropped, DEL erases the x
        assert (await in_thread(client.read_until, PROMPT)).startswith(b"ps [args...]")
        client.send(b"\x80\xfe\xc3(\r\n")  # invalid UTF-8
        assert (await in_thread(client.read_until, PROMPT)).startswith(b"No such command: ")
        client.send(b"ps\x1b[A\x1b[D\r\n")  # arrow keys typed into nc
        assert b"Task ID" in await in_thread(client.read_until, PROMPT)
        client.send(b"half a line\x03")  # Ctrl-C discards the line
        assert await in_thread(client.read_until, PROMPT) == b"\r\n" + PROMPT
        assert (await in_thread(client.command, "help ps")).startswith("ps ")


async def test_telnet_negotiation_is_answered_never_echoed(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        # What telnet sends on Ctrl-C: IP, then DO TIMING-MARK, hiding output until answered.
        client.send(bytes([IAC, IP, IAC, DO, TM]))
        answer = await in_thread(client.read_until, PROMPT)
        assert bytes([IAC, WILL, TM]) in answer
        client.send(bytes([IAC, DO, ECHO, IAC, WILL, NAWS, IAC, SB, NAWS]) + struct.pack(">HH", 70, 20))
        client.send(bytes([IAC, SE, IAC, AYT]) + b"ps\r\n")
        replies = await in_thread(client.read_until, PROMPT)
        assert bytes([IAC, WONT, ECHO]) in replies
        assert bytes([IAC, DO, NAWS]) in replies
        assert b"[aiomonitor: yes]" in replies
        table = replies.split(b"[aiomonitor: yes]\r\n", 1)[1].decode()
        lines = table.split("\r\n")
        if max(map(len, lines)) > 70:  # only a name too long for the width may widen it: names are never cut
            assert any(len(word) > 30 for line in lines[2:] for word in line.split()), table
        assert "Hidden to fit 70 columns: " in table  # columns gave way


async def test_colours_only_for_a_client_that_named_its_terminal(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as coloured, Client(monitor.port) as plain:
        await in_thread(coloured.start)
        await in_thread(plain.start)
        coloured.send(bytes([IAC, WILL, TTYPE]))
        asked = await in_thread(coloured.read_until, bytes([IAC, SE]))
        assert asked.endswith(bytes([IAC, DO, TTYPE, IAC, SB, TTYPE, 1, IAC, SE]))
        coloured.send(bytes([IAC, SB, TTYPE, 0]) + b"xterm-256color" + bytes([IAC, SE]))
        table = await in_thread(coloured.command, "ps")
        assert "\x1b[1mTask ID" in table
        rows = ANSI_SGR.sub("", table).splitlines()
        state_at = rows[1].index("State")
        states = {row[state_at:].split()[0] for row in rows[3:] if row[:1].isdigit()}
        assert states and states <= {"pending", "running", "waiting", "cancelling", "done"}  # still aligned
        assert "\x1b" not in await in_thread(plain.command, "ps")


async def test_abrupt_disconnects_leak_nothing(anyio_backend_name: str) -> None:
    def hammer(port: int) -> None:
        for round_ in range(60):  # (connections are set up at a paced rate: see _pacing)
            sock = socket.create_connection(("127.0.0.1", port))
            if round_ % 3 == 0:
                sock.sendall(b"ps\r\nwhere 1\r\n")  # vanish mid-command
            elif round_ % 3 == 1:  # reset instead of a clean close
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    with open_monitor(anyio_backend_name) as monitor:
        fds = open_fds()
        # Commands run on a bounded pool of worker threads: churn never grows it past the bound.
        for _ in range(2):
            await in_thread(hammer, monitor.port)
            assert await in_thread(poll, lambda: open_fds() == fds)
            # The monitor's own threads (other tests' and the test runner's threads come and go).
            # A worker frees its slot a moment before anyio counts it idle again, so a job
            # arriving just then may get a fresh thread: a little slack, never growth.
            ours = [t.name for t in threading.enumerate() if t.name.startswith("aiomonitor")]
            # The server thread, the stall recorder's, the workers and that slack.
            assert len(ours) <= 2 + _COMMAND_THREADS + 2, collections.Counter(ours)
        with Client(monitor.port) as client:  # and it still serves
            await in_thread(client.start)
            assert (await in_thread(client.command, "help ps")).startswith("ps ")
    # Closing ends the server thread and its worker threads.
    assert await in_thread(poll, lambda: not [t for t in threading.enumerate() if t.name.startswith("aiomonitor")])


class FloodMonitor(aiomonitor.Monitor):
    def do_flood(self) -> None:
        """Write 20 MB"""
        line = "x" * 1023 + "\n"
        for _ in range(20 * 1024):
            self._sout.write(line)


async def test_a_client_that_never_reads_stalls_nobody(anyio_backend_name: str) -> None:
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    # The stuck client's answer is cut write_timeout after its output stops
    # moving, and the client is dropped once it takes nothing for as long
    # again: it is looked for first, then the others work while it is stuck.
    with open_monitor(anyio_backend_name, monitor=FloodMonitor, write_timeout=2.0) as monitor:
        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            stuck = socket.create_connection(("127.0.0.1", monitor.port))
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.sendall(b"flood\r\n")
            stuck_peer = "{}:{}".format(*stuck.getsockname())
            before = ticks
            with Client(monitor.port) as other:
                await in_thread(other.start)
                assert stuck_peer in await in_thread(other.command, "who")
                for _ in range(5):
                    assert (await in_thread(other.command, "help ps")).startswith("ps ")
                # The app's loop ticks on while the client is still stuck.
                assert await in_thread(poll, lambda: ticks > before)

                def stuck_row() -> str:
                    return next((row for row in other.command("who").splitlines() if stuck_peer in row), "")

                # Cut after write_timeout, without having read: its flood ends, its session stays.
                assert await in_thread(poll, lambda: stuck_row().rstrip().endswith(" -"))
                stuck.sendall(b"flood\r\n")  # more, still unread: now it is dropped
                assert await in_thread(poll, lambda: not stuck_row())
            stuck.close()
            tg.cancel_scope.cancel()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(max_size=3000).map(lambda b: bytes(c for c in b if not chr(c).isalpha())))
async def test_fuzz_a_live_monitor_with_random_bytes(monitor: aiomonitor.Monitor, garbage: bytes) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        # Random bytes, then a resync (IAC SE ends a subnegotiation left open) and a command.
        client.send(garbage + bytes([IAC, SE, IAC, SE]) + b"\r\nhelp ps\r\n")
        try:
            await in_thread(client.read_until, b"ps [args...]")
        except AssertionError:
            assert client.eof and b"\x04" in garbage  # Ctrl-D means leave: a clean goodbye
