"""Every answer arrives whole, however big, and ends with its prompt.

A client that reads as fast as it can gets the biggest answers of a
100,000-task app whole; a client that stops reading loses the rest of one
answer after ``write_timeout``, and then still gets the marker and the
prompt; a custom command writing tens of megabytes reaches a reader whole.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import aiomonitor
from aiomonitor._server._streams import NOT_READING, TRUNCATED

from ..conftest import open_monitor
from ..support.helpers import PROMPT, Client, in_thread

CROWD = 100_000
PROGRAM = Path(__file__).parent.parent / "support" / "programs" / "parked_crowd.py"
_NAME = re.compile(rb"crowd-(\d+)")


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def crowd(request: pytest.FixtureRequest) -> Iterator[int]:
    """The port of an app with CROWD traced tasks parked (one process per framework)."""
    app = subprocess.Popen(
        [sys.executable, str(PROGRAM), request.param, str(CROWD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert line.startswith("monitor on "), line
        yield int(line.split()[-1])
    finally:
        app.kill()
        app.communicate()  # closes its pipes


def read_answer(port: int, line: str) -> bytes:
    """One command's answer as a client reading 1 MB at a time sees it, prompt included."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        received = bytearray()
        for expected in (PROMPT, PROMPT):
            while not received.endswith(expected):
                data = sock.recv(1 << 20)
                assert data, f"closed before the prompt; the answer ends {bytes(received[-300:])!r}"
                received += data
            if expected is PROMPT and line:
                received.clear()
                sock.sendall(line.encode() + b"\r\n")
                line = ""
        return bytes(received)


@pytest.mark.parametrize("line", ["ps -j", "ps", "pstree --expand", "pstree -j"])
def test_a_fast_reader_gets_the_biggest_answers_whole(crowd: int, line: str) -> None:
    answer = read_answer(crowd, line)
    assert answer.endswith(b"\r\n" + PROMPT)
    assert TRUNCATED.encode() not in answer
    names = set(_NAME.findall(answer))
    assert len(names) == CROWD, f"{CROWD - len(names)} tasks missing from {line}"
    if line == "ps -j":
        rows = [json.loads(row) for row in answer[: -len(PROMPT)].splitlines() if row.strip()]
        assert sum(row["name"].startswith("crowd-") for row in rows) == CROWD
    if line == "pstree -j":  # (pstree folds the crowd: --expand draws each task)
        tree = json.loads(answer[: -len(PROMPT)])
        assert sum(task["name"].startswith("crowd-") for task in tree["tasks"]) == CROWD


def test_the_client_gets_a_100k_json_answer_and_exits_0(crowd: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "-p", str(crowd), "--timeout", "60", "-c", "ps -j"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(row) for row in done.stdout.splitlines()]
    assert sum(row["name"].startswith("crowd-") for row in rows) == CROWD


def test_a_100k_task_dump_is_whole_and_opens_with_every_task(crowd: int, tmp_path: Path) -> None:
    bundle = tmp_path / "crowd.json"
    done = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "dump", "-p", str(crowd), "--timeout", "120", "-o", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    opened = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "open", str(bundle), "-c", "ps -j"], capture_output=True, check=False
    )
    assert opened.returncode == 0, opened.stderr
    rows = [json.loads(row) for row in opened.stdout.splitlines()]
    assert sum(row["name"].startswith("crowd-") for row in rows) == CROWD
    assert all(
        row["location"]["function"] in ("parked", "trio_parked") for row in rows if row["name"].startswith("crowd-")
    )


class Flood(aiomonitor.Monitor):
    def do_flood(self, megabytes: int) -> None:
        """Write MEGABYTES of numbered lines through self._sout.write"""
        for number in range(megabytes * 1024):
            self._sout.write(f"{number:08d} " + "x" * 1014 + "\n")


@pytest.mark.anyio
async def test_a_custom_command_writing_50_mb_reaches_a_reader_whole(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=Flood) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        answer = await in_thread(lambda: client.command("flood 50", timeout=120))
        lines = answer.splitlines()
        assert len(lines) == 50 * 1024
        assert lines[0].startswith("00000000 ") and lines[-1].startswith(f"{50 * 1024 - 1:08d} ")
        assert (await in_thread(client.command, "help ps")).startswith("ps ")


class _Cuts(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "its answer was cut" in record.getMessage():
            self.seen.set()


@pytest.mark.anyio
async def test_a_client_that_stops_reading_is_cut_then_gets_the_prompt(anyio_backend_name: str) -> None:
    cuts = _Cuts()
    logger = logging.getLogger("aiomonitor")
    logger.addHandler(cuts)
    saved_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with open_monitor(anyio_backend_name, monitor=Flood, write_timeout=1.0) as monitor:
            with socket.socket() as stuck, Client(monitor.port) as other:
                stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stuck.connect(("127.0.0.1", monitor.port))
                stuck.settimeout(15)
                reader = Client.__new__(Client)
                reader.sock, reader.buffer, reader.eof = stuck, bytearray(), False
                await in_thread(reader.start)
                stuck.sendall(b"flood 20\r\n")
                head = await in_thread(reader.read_until, b"00000010 ")  # it reads a little, then stops
                assert head.startswith(b"00000000 ")
                # Meanwhile another client is served as usual.
                await in_thread(other.start)
                assert (await in_thread(other.command, "help ps")).startswith("ps ")
                assert await in_thread(cuts.seen.wait, 30), "the stuck client's answer was never cut"
                # It reads again: the start of the answer, the marker, the prompt; then it goes on.
                rest = await in_thread(reader.read_until, PROMPT)
                assert rest.endswith(f"\r\n{NOT_READING}\r\n".encode() + PROMPT)
                assert len(rest) < 10 * 1024 * 1024  # the 20 MB answer was cut short
                reader.send(b"help ps\r\n")
                assert (await in_thread(reader.read_until, PROMPT)).startswith(b"ps ")
    finally:
        logger.removeHandler(cuts)
        logger.setLevel(saved_level)


def test_the_client_exits_1_when_an_answer_was_cut() -> None:
    """``aiomonitor -c`` against a monitor that cuts its answer: what came is
    printed, and the reason is one line on stderr with exit status 1."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30)  # a client that never comes ends the server thread too

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"\r\nasyncio Monitor: 1 task running\r\n\r\n" + PROMPT)
                received = b""
                while b"\r\n" not in received:
                    received += conn.recv(4096)
                conn.sendall(f"row 1\r\n\r\n{NOT_READING}\r\n".encode() + PROMPT)
                # The client sent "exit" after its line: the monitor says goodbye by closing.

        server = threading.Thread(target=serve)
        server.start()
        done = subprocess.run(
            [sys.executable, "-m", "aiomonitor", "-p", str(listener.getsockname()[1]), "-c", "ps"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        server.join(timeout=10)
    assert done.returncode == 1
    assert "row 1" in done.stdout
    assert done.stderr.strip().endswith("the answer was cut: the client is not reading")
    assert len(done.stderr.strip().splitlines()) == 1
