"""A line-mode telnet server protocol, sans I/O: bytes in, events out.

No sockets, threads or event loops here (a test enforces it).  Feed what the
client sent to :meth:`TelnetParser.feed`, act on the events it returns, and
send :meth:`TelnetParser.take_replies` back.  The same parser serves plain
``nc`` clients, which never send IAC sequences.

We never start a negotiation: a plain ``nc`` user would see the bytes as
garbage.  We answer the client's requests, refusing every option except
TIMING-MARK (which the telnet client waits on after Ctrl-C), NAWS (which our
own client offers to tell us the terminal width) and TERMINAL-TYPE (which it
offers when it runs in a terminal: we ask for the type, and colour output
for a real one).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

#: Commands are short; a client that sends more than this without a newline is
#: broken or hostile, and buffering it would let one client eat our memory.
MAX_LINE_BYTES = 64 * 1024

#: Subnegotiations we understand are a few bytes; anything longer is dropped.
_MAX_SUBNEGOTIATION = 64

IAC, DONT, DO, WONT, WILL, SB = 255, 254, 253, 252, 251, 250
EL, EC, AYT, AO, IP, BRK, SE = 248, 247, 246, 245, 244, 243, 240
ABORT, SUSP, EOF = 238, 237, 236
OPT_TIMING_MARK, OPT_TTYPE, OPT_NAWS = 6, 24, 31
TTYPE_IS, TTYPE_SEND = 0, 1

_CTRL_C, _CTRL_D, _BS, _CTRL_U, _ESC, _DEL = 0x03, 0x04, 0x08, 0x15, 0x1B, 0x7F
#: Bytes that mean something in a line: each is handled on its own.
_INTERESTING = re.compile(rb"[\x03\x04\x08\x0a\x0d\x15\x1b\x7f\xff]")
#: The other control bytes carry no meaning for a command line.  They are
#: dropped in bulk (``bytes.translate``, in C), so a flood of NULs costs no
#: Python work per byte.
_MEANINGLESS = bytes(b for b in range(0x20) if b != 0x09 and re.match(_INTERESTING, bytes((b,))) is None)


@dataclass(frozen=True, slots=True)
class Line:
    """A complete input line, decoded, without its line ending."""

    text: str


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than the limit arrived and was discarded."""

    limit: int


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ctrl-C: telnet IP/BRK/ABORT, or a raw ``\\x03`` byte."""


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """Ctrl-D on an empty line, telnet EOF, or the connection's end.

    After the connection's end the parser is ``closed``; after Ctrl-D it is
    not, so a console can return to the monitor prompt on the same connection.
    """


@dataclass(frozen=True, slots=True)
class WindowSize:
    """The client told us its terminal size (telnet NAWS)."""

    columns: int
    rows: int


@dataclass(frozen=True, slots=True)
class TerminalType:
    """The client named its terminal (telnet TERMINAL-TYPE, e.g. ``xterm-256color``)."""

    name: str


Event = Line | LineTooLong | Interrupt | EndOfInput | WindowSize | TerminalType


class _State(enum.Enum):
    DATA = enum.auto()
    CR = enum.auto()  # after CR: swallow the LF or NUL that completes it
    ESC = enum.auto()  # after ESC: a terminal escape sequence (arrow keys)
    CSI = enum.auto()
    IAC = enum.auto()
    OPTION = enum.auto()  # after IAC WILL/WONT/DO/DONT: the option byte
    SB = enum.auto()
    SB_IAC = enum.auto()


class TelnetParser:
    """Turns a client's byte stream into :data:`Event` objects."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max_line = max_line
        self._state = _State.DATA
        self._line = bytearray()
        self._overflowed = False
        self._verb = 0
        self._sub = bytearray()
        self._answered: set[tuple[int, int]] = set()
        self._replies = bytearray()
        self._events: list[Event] = []
        self.closed = False

    def take_replies(self) -> bytes:
        """Bytes the protocol wants sent back to the client (may be empty)."""
        replies = bytes(self._replies)
        self._replies.clear()
        return replies

    def feed(self, data: bytes) -> list[Event]:
        """Consume *data*; ``b""`` means the client closed its side."""
        if self.closed:
            return []
        if not data:
            if self._line and not self._overflowed:
                self._end_line()
            self._emit(EndOfInput())
            self.closed = True
            return self._take_events()
        pos = 0
        while pos < len(data):
            if self._state is _State.DATA:
                match = _INTERESTING.search(data, pos)
                end = match.start() if match else len(data)
                self._append(data[pos:end])
                if match is None:
                    break
                pos = end
            self._byte(data[pos])
            pos += 1
        return self._take_events()

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _append(self, chunk: bytes) -> None:
        if self._overflowed or not chunk:
            return
        self._line += chunk.translate(None, _MEANINGLESS)
        if len(self._line) > self._max_line:
            self._overflowed = True
            self._line.clear()

    def _end_line(self) -> None:
        if self._overflowed:
            self._emit(LineTooLong(self._max_line))
        else:
            self._emit(Line(self._line.decode("utf-8", errors="replace")))
        self._line.clear()
        self._overflowed = False

    def _byte(self, byte: int) -> None:
        handler = _HANDLERS[self._state]
        handler(self, byte)

    def _on_data(self, byte: int) -> None:
        if byte == IAC:
            self._state = _State.IAC
        elif byte in (0x0D, 0x0A):
            self._end_line()
            self._state = _State.CR if byte == 0x0D else _State.DATA
        elif byte == _CTRL_C:
            self._interrupt()
        elif byte == _CTRL_D:
            if not self._line:
                self._emit(EndOfInput())
        elif byte in (_BS, _DEL):
            del self._line[-1:]
        elif byte == _CTRL_U:
            self._line.clear()
        elif byte == _ESC:
            self._state = _State.ESC
        # Other control bytes never get here: _append drops them.

    def _on_cr(self, byte: int) -> None:
        self._state = _State.DATA
        if byte not in (0x0A, 0x00):
            self._byte(byte)

    def _on_esc(self, byte: int) -> None:
        if byte < 0x20 or byte == IAC:  # controls inside a sequence still act (ECMA-48)
            self._state = _State.DATA
            self._byte(byte)
        else:
            self._state = _State.CSI if byte == ord("[") else _State.DATA

    def _on_csi(self, byte: int) -> None:
        if byte < 0x20 or byte == IAC:
            self._state = _State.DATA
            self._byte(byte)
        elif 0x40 <= byte <= 0x7E:  # the final byte of a CSI sequence
            self._state = _State.DATA

    def _on_iac(self, byte: int) -> None:
        self._state = _State.DATA
        if byte == IAC:
            self._append(b"\xff")
        elif byte in (WILL, WONT, DO, DONT):
            self._verb = byte
            self._state = _State.OPTION
        elif byte == SB:
            self._sub.clear()
            self._state = _State.SB
        elif byte in (IP, BRK, ABORT, SUSP):
            self._interrupt()
        elif byte == EOF:
            self._emit(EndOfInput())
        elif byte == AYT:
            self._replies += b"\r\n[aiomonitor: yes]\r\n"
        elif byte == EC:
            del self._line[-1:]
        elif byte == EL:
            self._line.clear()
        # NOP, DM, GA, AO and the rest need no action in line mode.

    def _on_option(self, option: int) -> None:
        self._state = _State.DATA
        verb = self._verb
        if verb == DO and option == OPT_TIMING_MARK:
            # After IP the telnet client sends DO TIMING-MARK and discards our
            # output until it hears back (RFC 860): always answer.
            self._replies += bytes((IAC, WILL, OPT_TIMING_MARK))
        elif verb == WILL and option == OPT_NAWS:
            self._reply_once(DO, option)
        elif verb == WILL and option == OPT_TTYPE:
            if self._reply_once(DO, option):  # and ask for the type (RFC 1091)
                self._replies += bytes((IAC, SB, OPT_TTYPE, TTYPE_SEND, IAC, SE))
        elif verb == DO:
            self._reply_once(WONT, option)
        elif verb == WILL:
            self._reply_once(DONT, option)
        # WONT/DONT ask us to stay off, which we are: no reply (RFC 854 loops).

    def _reply_once(self, verb: int, option: int) -> bool:
        """Send this reply unless it was sent before; True if sent now."""
        # Answering every repeat could ping-pong forever with a broken peer.
        if (verb, option) in self._answered:
            return False
        self._answered.add((verb, option))
        self._replies += bytes((IAC, verb, option))
        return True

    def _on_sb(self, byte: int) -> None:
        if byte == IAC:
            self._state = _State.SB_IAC
        elif len(self._sub) < _MAX_SUBNEGOTIATION:
            self._sub.append(byte)

    def _on_sb_iac(self, byte: int) -> None:
        if byte == SE:
            self._state = _State.DATA
            self._subnegotiation(bytes(self._sub))
        else:  # IAC IAC inside SB is a literal 255; anything else, keep going
            self._state = _State.SB
            if byte == IAC and len(self._sub) < _MAX_SUBNEGOTIATION:
                self._sub.append(IAC)

    def _subnegotiation(self, payload: bytes) -> None:
        if len(payload) == 5 and payload[0] == OPT_NAWS:
            columns = int.from_bytes(payload[1:3], "big")
            rows = int.from_bytes(payload[3:5], "big")
            self._emit(WindowSize(columns, rows))
        elif len(payload) >= 2 and payload[0] == OPT_TTYPE and payload[1] == TTYPE_IS:
            self._emit(TerminalType(payload[2:].decode("ascii", errors="replace")))

    def _interrupt(self) -> None:
        self._line.clear()
        self._overflowed = False
        self._emit(Interrupt())


_HANDLERS = {
    _State.DATA: TelnetParser._on_data,
    _State.CR: TelnetParser._on_cr,
    _State.ESC: TelnetParser._on_esc,
    _State.CSI: TelnetParser._on_csi,
    _State.IAC: TelnetParser._on_iac,
    _State.OPTION: TelnetParser._on_option,
    _State.SB: TelnetParser._on_sb,
    _State.SB_IAC: TelnetParser._on_sb_iac,
}


def encode_output(text: str) -> bytes:
    """Text for the client: NVT line endings (CR LF), UTF-8.

    UTF-8 never produces the byte 255, so no IAC escaping is needed.
    """
    # Most text has no CR: looking for one is a fast scan, where the
    # replace's two-character search took ~10 ms of a 100k-row ps.
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text.replace("\n", "\r\n").encode("utf-8", errors="replace")
