"""The console conversation: read statements, run each in the monitored loop.

Runs in the server thread, on a :class:`~aiomonitor._server._connection.Connection`.
Input is read and compiled here (``_console``); each complete statement is
submitted to the monitored loop and waited for in a worker thread with the
same deadline and Ctrl-C rules as every other hop (``Submission.wait``).
When the client leaves, its running statement is cancelled.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._protocol.telnet import EndOfInput, Interrupt, Line, LineTooLong
from .._query._audit import AuditTrail
from ..backends import Interrupted, LoopUnresponsive, Submission
from ._connection import Connection
from ._console import ConsoleState, LeaveConsole, banner, format_exception


@dataclass(frozen=True)
class ConsoleSpec:
    """What a console needs from the monitor."""

    namespace: dict[str, Any]
    #: The monitored framework's name, for the banner.
    framework: str
    #: Runs an async function in the monitored loop (``Backend.submit``).
    submit: Callable[[Callable[[], Awaitable[Any]]], Submission]
    hop_timeout: float
    #: Every statement is recorded: who ran what, and how it went.
    audit: AuditTrail


class Console:
    """One client's console; its variables persist across visits."""

    def __init__(self, spec: ConsoleSpec | None) -> None:
        self._spec = spec
        self._state: ConsoleState | None = None

    async def run(self, conn: Connection) -> None:
        """Read and run statements until ``exit()``, Ctrl-D or the client leaves."""
        spec = self._spec
        if spec is None:
            conn.write("The Python console is disabled for this monitor.\n")
            return
        state = self._state = self._state or ConsoleState(spec.namespace, conn.write)
        conn.write(banner(spec.framework))
        while True:
            conn.prompt(state.prompt)
            event = await conn.next_event()
            if isinstance(event, EndOfInput):
                conn.write("\n")
                return
            if isinstance(event, (Interrupt, LineTooLong)):
                state.reset()
                conn.write("\nKeyboardInterrupt\n" if isinstance(event, Interrupt) else "Line too long; ignored.\n")
                continue
            if not isinstance(event, Line):
                continue
            if state.prompt == ">>> ":  # a new statement: its first line names it in the audit trail
                first_line = event.text.strip()
            try:
                code = state.push(event.text)
            except (SyntaxError, ValueError, OverflowError) as exc:
                conn.write(format_exception(exc))
                continue
            if code is not None and not await conn.in_worker(_execute, conn, spec, state.statement(code), first_line):
                return


def _execute(conn: Connection, spec: ConsoleSpec, statement: Callable[[], Awaitable[Any]], first_line: str) -> bool:
    """Run one statement in the monitored loop (worker thread), recorded in the
    audit trail with how it went; False leaves the console."""
    outcome = _run(conn, spec, statement)
    spec.audit.record(conn.client.who, "console", first_line[:200], outcome or "done")
    return outcome != "left the console"


def _run(conn: Connection, spec: ConsoleSpec, statement: Callable[[], Awaitable[Any]]) -> str | None:
    """Run *statement*; what went other than plainly well (None when it did)."""
    submission = spec.submit(statement)
    try:
        submission.wait(spec.hop_timeout, conn.client.interrupted)
    except LoopUnresponsive:
        conn.write(
            f"The event loop did not pick up the statement within {spec.hop_timeout:g} s "
            "(is it blocked?); the statement was withdrawn.\n"
        )
        return "withdrawn: the loop is blocked"
    except Interrupted:
        conn.write("KeyboardInterrupt\n")
        return "interrupted"
    except LeaveConsole:
        return "left the console"
    except concurrent.futures.CancelledError:
        conn.write("Cancelled\n")
        return "cancelled"
    except BaseException as exc:  # noqa: BLE001 - the statement's own error, shown as the REPL would
        conn.write(format_exception(exc))
        return f"raised {type(exc).__name__}"
    return None
