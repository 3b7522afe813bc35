"""The monitor conversation: intro, then prompt and command lines.

The server has logged the client in by then (``_login``).  Runs in the
server thread, on a :class:`~aiomonitor._server._connection.Connection`.  Each
command line runs in a worker thread through the :class:`SessionHost` (the
Monitor), which answers with the :class:`NextStep`: prompt again, leave, or
open the console (``_repl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .._commands._context import Client, NextStep
from .._protocol.telnet import EndOfInput, Line, LineTooLong
from ._connection import Connection
from ._repl import Console, ConsoleSpec


@dataclass(frozen=True)
class SessionConfig:
    """How sessions behave: set once when the monitor starts."""

    password: str | None = None
    #: When set, the password above opens a read-only session and this one
    #: a session with control (the ``control`` command asks for it too).
    control_password: str | None = None
    #: Who may connect to a unix socket (``SO_PEERCRED``; None: anyone who can
    #: open it, which mode 0600 already limits to the app's user and root).
    allowed_uids: frozenset[int] | None = None
    #: How long work waits for the monitored loop to pick it up.
    hop_timeout: float = 2.0
    #: A client that takes no byte for this long has its answer cut; for as
    #: long again, and it is disconnected.
    write_timeout: float = 30.0
    #: Refuse logged-in clients beyond this many (None: no limit).
    max_sessions: int | None = 64
    #: Connections that may wait at the password prompt at once; past this
    #: the oldest waiting one is dropped.
    max_pending_logins: int = 8
    #: Seconds a client has to give the password.
    login_timeout: float = 10.0
    #: Bytes a client may send before it has given the password.
    login_input_limit: int = 4096

    def __post_init__(self) -> None:
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1 (or None for no limit)")
        if self.max_pending_logins < 1:
            raise ValueError("max_pending_logins must be at least 1")
        if not self.login_timeout > 0 or not self.hop_timeout > 0 or not self.write_timeout > 0:
            raise ValueError("login_timeout, hop_timeout and write_timeout must be positive")
        if self.login_input_limit < 64:
            raise ValueError("login_input_limit must be at least 64 bytes (a password line)")


class SessionHost(Protocol):
    """What a conversation needs from the Monitor: three calls and a prompt."""

    prompt: str

    def intro_text(self) -> str:
        """The greeting after login (worker thread: it counts tasks)."""
        ...

    def run_command_line(self, client: Client, line: str) -> NextStep:
        """Run one command line for *client* (worker thread)."""
        ...

    def console_spec(self) -> ConsoleSpec | None:
        """What a new console needs (a fresh namespace), or None when it is disabled."""
        ...


class MonitorSession:
    """One client's conversation with the monitor (and its console, if opened)."""

    def __init__(self, host: SessionHost) -> None:
        self._host = host
        self._console: Console | None = None

    async def __call__(self, conn: Connection) -> None:
        conn.write(await conn.in_worker(self._host.intro_text))
        while True:
            conn.prompt(self._host.prompt)
            event = await conn.next_event()
            if isinstance(event, EndOfInput):
                return
            step = NextStep.PROMPT
            if isinstance(event, LineTooLong):
                conn.write(f"Line too long (over {event.limit} bytes); ignored.\n")
            elif isinstance(event, Line):
                conn.client.running = event.text
                try:
                    step = await conn.in_worker(self._host.run_command_line, conn.client, event.text)
                finally:
                    conn.client.running = None
            else:
                conn.write("\n")
            if step is NextStep.EXIT:
                return
            if step is NextStep.CONSOLE:
                await self._open_console(conn)
                conn.write("Back in the monitor.\n")

    async def _open_console(self, conn: Connection) -> None:
        # One console per session: leaving and coming back keeps its variables.
        if self._console is None:
            self._console = Console(self._host.console_spec())
        await self._console.run(conn)


class ConsoleSession:
    """A client of the console port: straight into the console."""

    def __init__(self, host: SessionHost) -> None:
        self._host = host

    async def __call__(self, conn: Connection) -> None:
        conn.client.kind = "console"
        await Console(self._host.console_spec()).run(conn)
