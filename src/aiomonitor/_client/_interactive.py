"""``python -m aiomonitor``: a line-editing client for the monitor.

telnetlib is gone from Python 3.13 and ``nc`` has no line editing.  This
client keeps editing and history local (prompt_toolkit when installed, else
``readline``) and sends whole lines, as a line-mode telnet client does.  It
announces its terminal width (telnet NAWS) so tables fit and, in a terminal
that shows colours, its terminal type (telnet TERMINAL-TYPE) so output is
coloured.  Completion data (command names, task ids) comes over a second,
short-lived connection, so completing never disturbs the session (its
``lastcmd`` included).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .._registry import Address
from . import _oneshot
from ._telnet import DO, IAC, IP, TTYPE, TTYPE_SEND, TelnetText, connect, naws, terminal_type_offer, terminal_type_reply

#: After output stops without a newline for this long, what is left is a prompt.
PROMPT_SETTLE = 0.05
HISTORY_FILE = Path.home() / ".aiomonitor_history"
#: Commands whose argument is a task id, for completion.
TASK_ID_COMMANDS = {"where", "w", "cancel"}


def wants_colour(no_colour_flag: bool) -> bool:
    """Colours only on a terminal, and never against the user's wish (NO_COLOR)."""
    if no_colour_flag or os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return False
    return os.environ.get("TERM", "dumb") not in ("", "dumb")


class Connection:
    """The session's socket: output up to the next prompt, lines in."""

    def __init__(self, sock: socket.socket, terminal_type: str | None = None) -> None:
        self.sock = sock
        self.closed = False
        #: Sent when the server asks (only if we offered it: see main).
        self.terminal_type = terminal_type
        self._text = TelnetText()

    def read_until_prompt(self, show: Callable[[str], None]) -> str | None:
        """Show output as it arrives; return the prompt once output settles
        on an unfinished line (None when the server closed the connection)."""
        pending = ""
        while True:
            timeout = PROMPT_SETTLE if pending else None
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return pending
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                show(pending + self._text.close())
                return None
            received, requests = self._text.feed(data)
            if bytes([TTYPE, TTYPE_SEND]) in requests and self.terminal_type:
                self.sock.sendall(terminal_type_reply(self.terminal_type))
            head, newline, pending = (pending + received).rpartition("\n")
            if newline:
                show(head + "\n")

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def interrupt(self) -> None:
        self.sock.sendall(bytes([IAC, IP, IAC, DO, 6]))

    def end_of_input(self) -> None:
        self.sock.sendall(b"\x04")


class ServerQueries:
    """Completion data, asked over a separate connection and cached briefly.

    Each question is ``_oneshot.run_line``'s exchange: it answers the
    password prompt only with the password it was given (the environment's),
    so completing against a locked monitor costs nothing, where sending the
    question blindly spent a failed login on every Tab.
    """

    def __init__(
        self,
        address: Address,
        password: str | None = None,
        prompt: str = _oneshot.DEFAULT_PROMPT,
        enabled: bool = True,
    ) -> None:
        """*enabled* False: a console session, which has no commands to complete."""
        self._address = address
        self._enabled = enabled
        self._password = password
        self._prompt = prompt
        self._cache: dict[str, tuple[float, list[str]]] = {}
        #: Task names by id, shown beside ids in the completion menu.
        self.task_names: dict[str, str] = {}

    def _ask(self, line: str) -> str:
        if not self._enabled:
            return ""
        return _oneshot.run_line(self._address, line, prompt=self._prompt, password=self._password, timeout=2.0)

    def _cached(self, key: str, fetch: Callable[[], list[str]], ttl: float) -> list[str]:
        now = time.monotonic()
        if key in self._cache and now - self._cache[key][0] < ttl:
            return self._cache[key][1]
        try:
            values = fetch()
        except (OSError, _oneshot.NoAnswer):
            values = []
        self._cache[key] = (now, values)
        return values

    def command_names(self) -> list[str]:
        def fetch() -> list[str]:
            text = self._ask("help")
            return sorted({line.split()[0].rstrip(":") for line in text.splitlines() if line.startswith("    ")})

        return self._cached("commands", fetch, ttl=300)

    def task_ids(self) -> list[str]:
        def fetch() -> list[str]:
            ids = []
            for line in self._ask("ps -j").splitlines():
                start = line.find("{")
                if start >= 0:
                    with contextlib.suppress(ValueError, KeyError):
                        task = json.loads(line[start:])
                        ids.append(str(task["id"]))
                        self.task_names[str(task["id"])] = task["name"]
            return ids

        return self._cached("tasks", fetch, ttl=1.0)


def candidates(queries: ServerQueries, text_before_cursor: str) -> Iterable[str]:
    """What may complete the word under the cursor."""
    words = text_before_cursor.split()
    completing_first = len(words) == 0 or (len(words) == 1 and not text_before_cursor.endswith(" "))
    if completing_first:
        return queries.command_names()
    if words[0] in TASK_ID_COMMANDS:
        return queries.task_ids()
    if words[0] == "help":
        return queries.command_names()
    return []


def make_reader(queries: ServerQueries, history: Path | None, plain: bool) -> Callable[[str], str]:
    """A function that shows a prompt and returns a line, with editing and history."""
    if plain:
        return readline_reader(queries, history)
    try:
        from ._prompt_toolkit import prompt_toolkit_reader
    except ImportError:
        return readline_reader(queries, history)

    def with_names(before_cursor: str) -> Iterable[tuple[str, str]]:
        return ((found, queries.task_names.get(found, "")) for found in candidates(queries, before_cursor))

    return prompt_toolkit_reader(history, with_names)


def readline_reader(queries: ServerQueries, history: Path | None) -> Callable[[str], str]:
    try:
        import readline
    except ImportError:  # no line editing at all (e.g. Windows without pyreadline)
        return input
    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def complete(text: str, state: int) -> str | None:
        before = readline.get_line_buffer()[: readline.get_begidx()] + text
        matches = [c for c in candidates(queries, before) if c.startswith(text)]
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")

    def read(prompt: str) -> str:
        line = input(prompt)
        if history is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)
        return line

    return read


def own_ctrl_c() -> None:
    """Make Ctrl-C reach the session even if SIGINT came ignored (main thread only).

    A program started in the background by a non-interactive shell (a
    script's ``cmd &``, a CI lane) inherits SIGINT ignored, and Python keeps
    it so.  In a terminal the session's Ctrl-C means "interrupt what runs
    now": without this it would be swallowed until prompt_toolkit, on some
    versions only, put Python's handler back after the first prompt.
    """
    if sys.stdin.isatty() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        with contextlib.suppress(ValueError):  # not the main thread: its caller owns the signals
            signal.signal(signal.SIGINT, signal.default_int_handler)


def run(conn: Connection, read_line: Callable[[str], str]) -> int:
    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    while True:
        # Ctrl-C outside the line editor interrupts what runs on the monitor.
        # That includes the moment a line is being sent: on a busy machine the
        # command may already run before this process is scheduled again.
        try:
            prompt = conn.read_until_prompt(show)
            if prompt is None:
                return 0
            line = read_one_line(read_line, prompt)
            if line is None:  # Ctrl-D: leave the console, or the monitor
                conn.end_of_input()
            else:
                conn.send_line(line)
        except KeyboardInterrupt:
            conn.interrupt()


def read_one_line(read_line: Callable[[str], str], prompt: str) -> str | None:
    """A line from the user; Ctrl-C clears it locally (an empty line sent to
    the monitor would repeat the last command), Ctrl-D gives None."""
    while True:
        try:
            return read_line(prompt)
        except KeyboardInterrupt:
            sys.stdout.write("^C\n")
        except EOFError:
            return None


def session(
    address: Address,
    *,
    plain: bool,
    history: Path | None,
    no_colour: bool,
    completion: ServerQueries | None = None,
) -> int:
    """An interactive session with the monitor (or console) at *address*;
    Tab completes from *completion*'s answers (none for a console)."""
    try:
        sock = connect(address)
    except OSError as exc:
        print(f"aiomonitor: cannot connect to {address}: {exc.strerror or exc}", file=sys.stderr)
        print("Is the app running with the monitor started (and on this address)?", file=sys.stderr)
        return 1
    if sys.stdout.isatty():
        size = shutil.get_terminal_size()
        sock.sendall(naws(size.columns, size.lines))
    terminal_type = os.environ.get("TERM") if wants_colour(no_colour) else None
    if terminal_type:
        sock.sendall(terminal_type_offer())
    queries = completion if completion is not None else ServerQueries(address, enabled=False)
    own_ctrl_c()
    with contextlib.closing(sock):
        try:
            return run(Connection(sock, terminal_type), make_reader(queries, history, plain))
        except (ConnectionError, BrokenPipeError):
            print("\naiomonitor: the connection was closed.", file=sys.stderr)
            return 0
