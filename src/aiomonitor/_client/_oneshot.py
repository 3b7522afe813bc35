"""One command, no human: log in, run a line, return its output.

For ``aiomonitor -c``, ``--all`` and ``ls``.  The exchange is driven by what
the monitor sends, never by pauses: we wait for the prompt we know the
monitor uses (the registry records it) or for ``Password:``, so a slow,
loaded or stopped process costs a timeout, never a garbled answer.  The
password is sent only when it is asked for: sent blindly to a monitor
without one, it would run as a command.

Every wait counts against one deadline for the whole call.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import time
from dataclasses import dataclass

from .._registry import Address, write_private_file
from ._telnet import TelnetText, connect, naws

DEFAULT_PROMPT = "monitor >>> "
PASSWORD_PROMPT = "Password: "  # noqa: S105 - what the monitor asks
#: What the monitor says at the end of a refused login (see ``_login``).
_WRONG_PASSWORD = "Wrong password."  # noqa: S105 - what the monitor answers
_TASK_COUNT = re.compile(r"(\d+) tasks? running")
#: A terminal wider than any column: output for scripts keeps every column
#: whole, as ``ps -w`` does.  (Not 0xFFFF: a 255 byte inside a telnet
#: subnegotiation would have to be doubled.)
UNLIMITED_COLUMNS = 9999
#: How the monitor's marker of a cut answer begins (``_streams.TRUNCATED``;
#: the client side imports nothing of the monitor).
_TRUNCATED = "[output truncated: "
#: Commands after which no prompt comes: the session ends.
SESSION_ENDING_COMMANDS = frozenset({"exit", "quit", "q"})
#: Commands that wait for keys of their own: nothing would ever end them here.
INTERACTIVE_COMMANDS = frozenset({"top", "console"})


class NoAnswer(Exception):
    """The monitor could not be reached or did not answer (the message says which)."""


class TimedOut(NoAnswer):
    """The monitor accepted the connection but did not answer in time (a stopped process does that)."""


def refusal(line: str) -> str | None:
    """Why *line* can't run without a person at the keyboard, or None when it can."""
    words = line.split()
    if words and words[0] in INTERACTIVE_COMMANDS:
        return f"{words[0]} is interactive; run it in a session (aiomonitor -P PID)"
    return None


def reason(exc: NoAnswer, timeout: float) -> str:
    """What went wrong, for the user."""
    return f"no answer within {timeout:g} s" if isinstance(exc, TimedOut) else str(exc)


class PasswordNeeded(NoAnswer):
    """The monitor asks for a password and none was given."""


@dataclass(frozen=True)
class Login:
    """A logged-in connection and the greeting the monitor sent."""

    sock: socket.socket
    intro: str

    def task_count(self) -> int | None:
        """The count in the monitor's greeting (None if a custom one lacks it)."""
        match = _TASK_COUNT.search(self.intro)
        return int(match.group(1)) if match else None


class _Reader:
    """Text from the socket (``TelnetText``), until a deadline.

    Kept as chunks and joined when asked: ``ps`` at 100k tasks is megabytes,
    and appending to one string would copy it once per chunk.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._text = TelnetText()
        self._chunks: list[str] = []
        self.closed = False

    @property
    def text(self) -> str:
        """Everything read since the last ``take``, with CR LF as newlines."""
        joined = "".join(self._chunks)
        self._chunks = [joined]
        return joined

    def more(self) -> None:
        """Wait for more text; ``NoAnswer`` at the deadline."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or not select.select([self._sock], [], [], remaining)[0]:
            raise TimedOut("no answer in time")
        try:
            data = self._sock.recv(65536)
        except OSError as exc:
            raise NoAnswer(f"connection lost: {exc.strerror or exc}") from None
        if not data:
            self.closed = True
            self._chunks.append(self._text.close())
            return
        self._chunks.append(self._text.feed(data)[0])

    def take(self) -> str:
        text = self.text
        self._chunks = []
        return text


def log_in(address: Address, *, prompt: str, password: str | None, deadline: float) -> Login:
    """Connect and wait for the first prompt, giving the password if asked."""
    try:
        sock = connect(address, max(0.01, deadline - time.monotonic()))
    except OSError as exc:
        raise NoAnswer(f"cannot connect to {address}: {exc.strerror or exc}") from None
    try:
        return Login(sock, _greeting(sock, _Reader(sock, deadline), prompt, password))
    except BaseException:
        sock.close()
        raise


def _greeting(sock: socket.socket, reader: _Reader, prompt: str, password: str | None) -> str:
    """What the monitor says before its first prompt, after the password if it asks."""
    asked = False
    while prompt not in reader.text:
        if reader.text.endswith(PASSWORD_PROMPT) and not asked:
            if password is None:
                raise PasswordNeeded("the monitor asks for a password (set AIOMONITOR_PASSWORD)")
            sock.sendall(password.encode() + b"\r\n")
            reader.take()
            asked = True
        elif asked and _WRONG_PASSWORD in reader.text:
            raise NoAnswer("wrong password")
        reader.more()
        if reader.closed:
            said = reader.text.strip().splitlines()
            last = "".join(c if c.isprintable() else "?" for c in said[-1][:200]) if said else "nothing said"
            raise NoAnswer(f"the monitor closed the connection: {last}")
    return reader.take().rpartition(prompt)[0]


def run_line(
    address: Address,
    line: str,
    *,
    prompt: str = DEFAULT_PROMPT,
    password: str | None = None,
    timeout: float = 10.0,
    columns: int = UNLIMITED_COLUMNS,
) -> str:
    """The output of *line* on the monitor at *address* (without prompts),
    with tables as wide as *columns* (by default never shortened)."""
    problem = refusal(line)
    if problem is not None:
        raise ValueError(problem)
    words = line.split()
    deadline = time.monotonic() + timeout
    login = log_in(address, prompt=prompt, password=password, deadline=deadline)
    with contextlib.closing(login.sock) as sock:
        # The exit line waits, unread, until the command is done: the
        # connection closing is the end of the answer.
        try:
            sock.sendall(naws(columns, 24) + line.encode() + b"\r\nexit\r\n")
        except OSError as exc:
            raise NoAnswer(f"connection lost: {exc.strerror or exc}") from None
        reader = _Reader(sock, deadline)
        while not reader.closed:
            reader.more()
    output, found, _ = reader.text.rpartition(prompt)
    if found:
        return output
    if words and words[0] in SESSION_ENDING_COMMANDS:
        return reader.text
    raise NoAnswer("the monitor closed the connection before the answer ended")


def cut_reason(output: str) -> str | None:
    """Why the monitor cut *output* short (its last line says so), or None when it came whole."""
    last = output.rstrip("\n").rpartition("\n")[2]
    if last.startswith(_TRUNCATED) and last.endswith("]"):
        return "the answer was cut: " + last[len(_TRUNCATED) : -1]
    return None


def task_count(address: Address, *, prompt: str, password: str | None, timeout: float) -> int | None:
    """The number of tasks the monitor greets with; ``NoAnswer`` when unreachable."""
    login = log_in(address, prompt=prompt, password=password, deadline=time.monotonic() + timeout)
    with contextlib.closing(login.sock) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"exit\r\n")
        return login.task_count()


#: How a bundle's text begins (``dump``); anything else is the monitor saying no.
BUNDLE_START = '{"format": "aiomonitor-bundle"'


def save_bundle(text: str, path: str | None) -> str:
    """Write the output of ``dump`` to *path* (default: ``aiomonitor-PID-DATE-TIME.json``
    here), privately (0600: a bundle holds the program's arguments and source
    lines) and atomically; return the path.  ``ValueError`` with the monitor's
    own words when *text* is not a bundle."""
    cut = cut_reason(text)
    if cut is not None:
        raise ValueError(cut)
    if not text.startswith(BUNDLE_START):
        said = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise ValueError(f"no bundle from this monitor (it said: {said[:200]}); is it aiomonitor 1.1 or later?")
    try:
        bundle = json.loads(text)
        pid, taken_at = int(bundle["process"]["pid"]), float(bundle["taken"]["at"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the monitor's bundle does not read ({type(exc).__name__}: {exc})") from None
    if path is None:
        path = f"aiomonitor-{pid}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(taken_at))}.json"
    write_private_file(path, [text])
    return path
