"""Keep console statements from reading the app's standard input.

A statement typed on the console runs in the app's event loop thread.  If it
reads ``sys.stdin`` (``sys.stdin.readline()``, ``pdb.set_trace()``, a
``cmd.Cmd`` loop, ``input()`` from a library) it blocks that thread until
someone types on the *app's* terminal, which in production is nobody: the
whole app freezes.  The console's own ``input``/``breakpoint``/``help`` are
replaced in its namespace (``_console``); this catches the rest.

While at least one console statement runs, ``sys.stdin`` is a proxy that
refuses reads made *by console statements* (a context variable marks them:
each statement is its own task) and hands everything else to the real
stream, so the app's own readers, in the loop or in other threads, see no
difference.  The proxy is removed when the last statement ends, unless the
app replaced ``sys.stdin`` itself meanwhile.

``sys.stdin`` is one per process, so the count of running statements is one
per process too: every monitor's console shares it, on purpose.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

#: True in the context of a console statement (set by its task, seen by nothing else).
_in_console_statement: ContextVar[bool] = ContextVar("aiomonitor_in_console_statement", default=False)

_READS = frozenset({"read", "readline", "readlines", "buffer", "detach", "fileno"})

_lock = threading.Lock()
_running = 0
_real: TextIO | None = None
_proxy: GuardedStdin | None = None


class StdinRefused(OSError):
    """A console statement tried to read the app's standard input."""

    def __init__(self) -> None:
        super().__init__(
            "the console can't read the app's standard input: it would block the app's event loop "
            "(print what you need instead, or run a debugger on the app itself)"
        )


class GuardedStdin:
    """``sys.stdin`` while console statements run: reads from them are refused."""

    def __init__(self, real: TextIO) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name in _READS and _in_console_statement.get():
            raise StdinRefused
        return getattr(self._real, name)

    def __iter__(self) -> Iterator[str]:
        if _in_console_statement.get():
            raise StdinRefused
        return iter(self._real)

    def __next__(self) -> str:
        if _in_console_statement.get():
            raise StdinRefused
        return next(self._real)


@contextlib.contextmanager
def console_statement() -> Iterator[None]:
    """Wrap one console statement's run (inside its own task, in the app's loop)."""
    _in_console_statement.set(True)  # the statement's task has a context of its own
    _install()
    try:
        yield
    finally:
        _uninstall()


def _install() -> None:
    global _running, _real, _proxy  # one sys.stdin per process (see the module docstring)
    with _lock:
        _running += 1
        if _running == 1 and sys.stdin is not None:
            _real = sys.stdin
            _proxy = GuardedStdin(sys.stdin)
            sys.stdin = _proxy  # duck-typed: every other attribute is the real stream's


def _uninstall() -> None:
    global _running, _real, _proxy  # one sys.stdin per process (see the module docstring)
    with _lock:
        _running -= 1
        if _running == 0:
            if _proxy is not None and sys.stdin is _proxy:
                sys.stdin = _real
            _real = _proxy = None
