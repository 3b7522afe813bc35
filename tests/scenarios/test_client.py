"""``python -m aiomonitor`` driven in a pseudo-terminal against a real app."""

from __future__ import annotations

import fcntl
import re
import signal
import socket
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ..support.apps import running_app
from ..support.helpers import Client, poll

PROMPT = "monitor >>>"  # prompt_toolkit draws the trailing space separately
SGR = r"(?:\x1b\[[0-9;]*m)*"  # colour codes around a cell


@pytest.fixture
def demo_port() -> Iterator[int]:
    with running_app("examples/demo_asyncio.py", "-p", "0", "--console-port", "0") as (_, port, _):
        yield port


def spawn_client(
    port: int,
    tmp_path: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    sigint: signal.Handlers = signal.SIG_DFL,
) -> pexpect.spawn:
    """The client in a terminal, started as a shell starts a foreground job
    (SIGINT as *sigint*: a background lane of the test script ignores it)."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aiomonitor", "-p", str(port), *extra],
        env={"AIOMONITOR_HISTORY": str(tmp_path / "history"), "TERM": "xterm", "PATH": "/usr/bin:/bin", **(env or {})},
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 120),
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
    )
    child.expect_exact(PROMPT)
    return child


@pytest.mark.parametrize(
    "front_end", [pytest.param((), id="prompt_toolkit"), pytest.param(("--plain",), id="readline")]
)
def test_a_session_through_the_client(demo_port: int, tmp_path: Path, front_end: tuple[str, ...]) -> None:
    child = spawn_client(demo_port, tmp_path, *front_end)
    child.sendline("ps")
    # In a terminal the client names it (telnet TERMINAL-TYPE): states come coloured.
    child.expect(r"(\d+)\s+\x1b\[32mpending\s*\x1b\[0m\s+ticker")
    ticker_id = child.match.group(1)
    child.expect_exact(PROMPT)
    # Complete a task id: all but its last digit, then Tab.
    child.send(f"where {ticker_id[:-1]}\t")
    child.expect_exact(ticker_id)
    child.send("\r")
    child.expect_exact(f"Stack for task {ticker_id}")
    child.expect(rf"in {SGR}ticker")
    child.expect_exact(PROMPT)
    # Complete a command name.
    child.send("stackt\t")
    child.expect_exact("race")  # the completed rest of "stacktrace"
    child.send("\r")
    child.expect_exact("Stack of the event loop thread")
    child.expect_exact(PROMPT)
    # History: the up arrow brings back "stacktrace".
    child.send("\x1b[A\r")
    child.expect_exact("Stack of the event loop thread")
    child.expect_exact(PROMPT)
    # The console, and back.
    child.sendline("console")
    child.expect_exact(">>>")
    child.sendline("stats['ticks'] >= 0")
    child.expect_exact("True")
    child.expect_exact(">>>")
    child.sendcontrol("d")
    child.expect_exact("Back in the monitor.")
    child.expect_exact(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "history").read_text()
    assert "stacktrace" in history
    assert "console" in history


@pytest.mark.parametrize(
    ("extra", "env"), [pytest.param(("--no-color",), {}, id="flag"), pytest.param((), {"NO_COLOR": "1"}, id="NO_COLOR")]
)
def test_colours_can_be_refused(demo_port: int, tmp_path: Path, extra: tuple[str, ...], env: dict[str, str]) -> None:
    child = spawn_client(demo_port, tmp_path, "--plain", *extra, env=env)
    child.sendline("ps")
    child.expect(r"(\d+)\s+pending\s+ticker")  # plain cells: no codes between them
    child.expect_exact(PROMPT)
    assert "\x1b[" not in child.before
    child.sendline("exit")
    child.expect(pexpect.EOF)


@pytest.mark.parametrize(
    "sigint", [pytest.param(signal.SIG_DFL, id="default"), pytest.param(signal.SIG_IGN, id="came-ignored")]
)
def test_ctrl_c_interrupts_a_running_statement(demo_port: int, tmp_path: Path, sigint: signal.Handlers) -> None:
    child = spawn_client(demo_port, tmp_path, sigint=sigint)
    child.sendline("console")
    child.expect_exact(">>>")
    child.sendline("await asyncio.sleep(3600)")

    def statement_running() -> bool:
        with Client(demo_port) as watcher:
            watcher.start()
            return "aiomonitor-console" in watcher.command("ps -a -w aiomonitor-console")

    assert poll(statement_running)
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(">>>")
    child.sendline("'alive'")
    child.expect_exact("'alive'")
    child.sendcontrol("d")
    child.expect_exact(PROMPT)
    child.sendcontrol("d")
    child.expect(pexpect.EOF)


def test_a_clear_message_when_nothing_listens() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "-p", str(port)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    import aiomonitor

    result = subprocess.run([sys.executable, "-m", "aiomonitor", "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"aiomonitor {aiomonitor.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", aiomonitor.__version__)


def test_the_0_4_client_module_still_connects(demo_port: int, tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "aiomonitor.cli", "-H", "127.0.0.1", "-p", str(demo_port), "--plain", "--no-color"],
        env={"AIOMONITOR_HISTORY": str(tmp_path / "history"), "TERM": "xterm", "PATH": "/usr/bin:/bin"},
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 120),
    )
    child.expect_exact(PROMPT)
    child.sendline("ps ticker")
    child.expect(r"\d+\s+pending\s+ticker")
    child.expect_exact(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)


def _unread(sock: socket.socket) -> int:
    """Bytes waiting in *sock* that its reader has not taken yet."""
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def test_a_character_and_a_line_end_split_between_reads_arrive_whole() -> None:
    """The interactive client's reader over a real socket: ``└─`` cut inside
    its UTF-8 bytes, and CR LF cut between CR and LF, each across two reads."""
    from aiomonitor._client._interactive import Connection

    ours, theirs = socket.socketpair()
    shown: list[str] = []
    with ours, theirs:
        reader = threading.Thread(target=Connection(ours).read_until_prompt, args=(shown.append,))
        reader.start()
        whole = "└─ worker\r\n└─ next\r\nmonitor >>> ".encode()
        cuts = [2, whole.index(b"\r\n") + 1, len(whole)]
        start = 0
        for cut in cuts:
            theirs.sendall(whole[start:cut])
            assert poll(lambda: _unread(ours) == 0)  # read: the next piece comes in a read of its own
            start = cut
        reader.join(timeout=15)
    assert "".join(shown) == "└─ worker\n└─ next\n"
    assert "\ufffd" not in "".join(shown) and "\r" not in "".join(shown)


@given(
    text=st.text(max_size=80).map(lambda t: t.replace("\r", "") + "\r\n└─ ok\r\n"), cuts=st.lists(st.integers(0, 200))
)
def test_telnet_text_is_the_same_however_the_bytes_are_cut(text: str, cuts: list[int]) -> None:
    from aiomonitor._client._telnet import TelnetText

    data = text.encode()
    reader = TelnetText()
    out = []
    start = 0
    for cut in [*sorted({min(cut, len(data)) for cut in cuts}), len(data)]:
        out.append(reader.feed(data[start:cut])[0])
        start = cut
    out.append(reader.close())
    assert "".join(out) == text.replace("\r\n", "\n")
