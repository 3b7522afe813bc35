"""ANSI colours, only for clients that said they are a terminal.  Pure.

A client says so by offering telnet TERMINAL-TYPE (RFC 1091) and naming a
real terminal.  ``nc``, scripts, ``ps -j`` consumers and a telnet client we
never asked (we start no negotiation: ``nc`` would print it as garbage) all
get plain text.  Styles wrap text *after* it was padded to its column, so the
escape codes never count towards column widths.
"""

from __future__ import annotations

from dataclasses import dataclass

_RESET = "\x1b[0m"
_BOLD, _DIM, _RED, _GREEN, _YELLOW, _MAGENTA = "1", "2", "31", "32", "33", "35"

#: Task states (both backends) and their colours: what runs or waits normally
#: is green, what is being torn down yellow, what is over dim.
_STATE_COLOURS = {
    "running": _GREEN,
    "pending": _GREEN,
    "waiting": _GREEN,
    "cancelling": _YELLOW,
    "done": _DIM,
}

#: Terminal types that cannot show colours (``TERM`` values).
_NO_COLOUR_TERMINALS = frozenset({"", "dumb", "unknown", "network"})


@dataclass(frozen=True, slots=True)
class Style:
    """How a session's output is decorated; :data:`PLAIN` leaves it alone."""

    colour: bool

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}{_RESET}" if self.colour and text else text

    def heading(self, text: str) -> str:
        return self._wrap(_BOLD, text)

    def rule(self, text: str) -> str:
        return self._wrap(_DIM, text)

    def warning(self, text: str) -> str:
        return self._wrap(f"{_BOLD};{_RED}", text)

    def source(self, text: str) -> str:
        """A file name, line number or function in a traceback (as Python 3.13 colours them)."""
        return self._wrap(_MAGENTA, text)

    def state(self, cell: str) -> str:
        """A (padded) task-state cell, coloured by the state it names."""
        code = _STATE_COLOURS.get(cell.strip())
        return cell if code is None else self._wrap(code, cell)


PLAIN = Style(colour=False)
COLOUR = Style(colour=True)


def style_for_terminal(terminal_type: str) -> Style:
    """The style for a client that reported this terminal type."""
    return PLAIN if terminal_type.strip().lower() in _NO_COLOUR_TERMINALS else COLOUR
