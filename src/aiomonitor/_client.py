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
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ._registry import Address

IAC, SB, SE, WILL, DO, IP = 255, 250, 240, 251, 253, 244
NAWS, TTYPE = 31, 24
TTYPE_IS, TTYPE_SEND = 0, 1
#: A subnegotiation longer than this is not one we asked for: dropped.
_MAX_SUBNEGOTIATION = 1024
#: After output stops without a newline for this long, what is left is a prompt.
PROMPT_SETTLE = 0.05
HISTORY_FILE = Path.home() / ".aiomonitor_history"
#: Commands whose argument is a task id, for completion.
TASK_ID_COMMANDS = {"where", "w", "cancel"}


def connect(address: Address, timeout: float = 5.0) -> socket.socket:
    """A blocking socket connected to *address* (TCP or unix)."""
    if address.path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.path)
        except BaseException:
            sock.close()
            raise
    else:
        assert address.port is not None
        sock = socket.create_connection((address.connectable_host(), address.port), timeout=timeout)
    sock.settimeout(None)
    return sock


def naws(columns: int, rows: int) -> bytes:
    return bytes([IAC, WILL, NAWS, IAC, SB, NAWS]) + struct.pack(">HH", columns, rows) + bytes([IAC, SE])


def terminal_type_offer() -> bytes:
    return bytes([IAC, WILL, TTYPE])


def terminal_type_reply(name: str) -> bytes:
    return bytes([IAC, SB, TTYPE, TTYPE_IS]) + name.encode("ascii", errors="replace") + bytes([IAC, SE])


def wants_colour(no_colour_flag: bool) -> bool:
    """Colours only on a terminal, and never against the user's wish (NO_COLOR)."""
    if no_colour_flag or os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return False
    return os.environ.get("TERM", "dumb") not in ("", "dumb")


def split_telnet(data: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """The server's bytes as (text, an unfinished telnet sequence to prepend to
    the next chunk, payloads of the subnegotiations it sent).

    Option replies (IAC DO NAWS, WILL TIMING-MARK) are dropped.  Our text is
    UTF-8, which never contains the byte IAC, so every IAC starts a sequence.
    """
    out = bytearray()
    subnegotiations: list[bytes] = []
    index, size = 0, len(data)
    while index < size:
        found = data.find(IAC, index)
        if found < 0:
            out += data[index:]
            break
        out += data[index:found]
        index = found
        if index + 1 >= size:
            return bytes(out), data[index:], subnegotiations
        verb = data[index + 1]
        if verb == SB:
            end = data.find(bytes([IAC, SE]), index + 2)
            if end < 0:
                unfinished = data[index:] if size - index <= _MAX_SUBNEGOTIATION else b""
                return bytes(out), unfinished, subnegotiations
            subnegotiations.append(data[index + 2 : end])
            index = end + 2
        elif 251 <= verb <= 254:
            if index + 2 >= size:
                return bytes(out), data[index:], subnegotiations
            index += 3
        else:
            index += 2
    return bytes(out), b"", subnegotiations


def strip_telnet(data: bytes) -> bytes:
    """The text of a complete reply, without telnet sequences."""
    return split_telnet(data)[0]


class Connection:
    """The session's socket: output up to the next prompt, lines in."""

    def __init__(self, sock: socket.socket, terminal_type: str | None = None) -> None:
        self.sock = sock
        self.closed = False
        #: Sent when the server asks (only if we offered it: see main).
        self.terminal_type = terminal_type
        self._unfinished = b""

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
                show(pending)
                return None
            raw, self._unfinished, requests = split_telnet(self._unfinished + data)
            if bytes([TTYPE, TTYPE_SEND]) in requests and self.terminal_type:
                self.sock.sendall(terminal_type_reply(self.terminal_type))
            text = pending + raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
            head, newline, pending = text.rpartition("\n")
            if newline:
                show(head + "\n")

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def interrupt(self) -> None:
        self.sock.sendall(bytes([IAC, IP, IAC, DO, 6]))

    def end_of_input(self) -> None:
        self.sock.sendall(b"\x04")


class ServerQueries:
    """Completion data, asked over a separate connection and cached briefly."""

    def __init__(self, address: Address) -> None:
        self._address = address
        self._cache: dict[str, tuple[float, list[str]]] = {}
        #: Task names by id, shown beside ids in the completion menu.
        self.task_names: dict[str, str] = {}

    def _ask(self, line: str) -> str:
        with contextlib.closing(connect(self._address, timeout=1.0)) as sock:
            sock.settimeout(2.0)
            sock.sendall(line.encode() + b"\r\nexit\r\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return strip_telnet(b"".join(chunks)).decode("utf-8", errors="replace")

    def _cached(self, key: str, fetch: Callable[[], list[str]], ttl: float) -> list[str]:
        now = time.monotonic()
        if key in self._cache and now - self._cache[key][0] < ttl:
            return self._cache[key][1]
        try:
            values = fetch()
        except OSError:
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
        from ._client_ptk import prompt_toolkit_reader
    except ImportError:
        return readline_reader(queries, history)
    return prompt_toolkit_reader(queries, history, candidates)


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


def run(conn: Connection, read_line: Callable[[str], str]) -> int:
    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    while True:
        try:
            prompt = conn.read_until_prompt(show)
        except KeyboardInterrupt:  # Ctrl-C while a command runs: interrupt it
            conn.interrupt()
            continue
        if prompt is None:
            return 0
        line = read_one_line(read_line, prompt)
        if line is None:  # Ctrl-D: leave the console, or the monitor
            conn.end_of_input()
        else:
            conn.send_line(line)


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


def session(address: Address, *, plain: bool, history: Path | None, no_colour: bool) -> int:
    """An interactive session with the monitor (or console) at *address*."""
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
    queries = ServerQueries(address)
    with contextlib.closing(sock):
        try:
            return run(Connection(sock, terminal_type), make_reader(queries, history, plain))
        except (ConnectionError, BrokenPipeError):
            print("\naiomonitor: the connection was closed.", file=sys.stderr)
            return 0
