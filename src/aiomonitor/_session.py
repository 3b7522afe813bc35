"""The monitor conversation: password, intro, then prompt and command lines.

Runs in the server thread, on a :class:`~aiomonitor._connection.Connection`.
Each command line runs in a worker thread through the :class:`SessionHost`
(the Monitor), which answers with the :class:`NextStep`: prompt again, leave,
or open the console (``_repl``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from ._connection import Connection
from ._context import Client, NextStep
from ._protocol.telnet import EndOfInput, Line, LineTooLong
from ._repl import Console, ConsoleSpec

#: Password attempts before the connection is dropped.
AUTH_ATTEMPTS = 3


@dataclass(frozen=True)
class SessionConfig:
    """How sessions behave: set once when the monitor starts."""

    password: str | None = None
    #: How long work waits for the monitored loop to pick it up.
    hop_timeout: float = 2.0
    #: A client that reads nothing for this long is disconnected.
    write_timeout: float = 30.0
    #: Refuse clients beyond this many (None: no limit).
    max_sessions: int | None = None


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


async def authenticate(conn: Connection, password: str | None) -> bool:
    """Ask for *password* (if any); False if the client failed or left."""
    if password is None:
        return True
    for _ in range(AUTH_ATTEMPTS):
        conn.write("Password: ")
        event = await conn.next_event()
        if not isinstance(event, Line):
            if isinstance(event, EndOfInput):
                return False
            continue
        if hmac.compare_digest(event.text.encode(), password.encode()):
            return True
        conn.write("Wrong password.\n")
    conn.write("Too many failed attempts; bye.\n")
    return False


class MonitorSession:
    """One client's conversation with the monitor (and its console, if opened)."""

    def __init__(self, host: SessionHost, config: SessionConfig) -> None:
        self._host = host
        self._config = config
        self._console: Console | None = None

    async def __call__(self, conn: Connection) -> None:
        if not await authenticate(conn, self._config.password):
            return
        conn.write(await conn.in_worker(self._host.intro_text))
        while True:
            conn.write(self._host.prompt)
            event = await conn.next_event()
            if isinstance(event, EndOfInput):
                return
            step = NextStep.PROMPT
            if isinstance(event, LineTooLong):
                conn.write(f"Line too long (over {event.limit} bytes); ignored.\n")
            elif isinstance(event, Line):
                conn.running = event.text
                try:
                    step = await conn.in_worker(self._host.run_command_line, conn, event.text)
                finally:
                    conn.running = None
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
    """A client of the console port: password, then straight into the console."""

    def __init__(self, host: SessionHost, config: SessionConfig) -> None:
        self._host = host
        self._config = config

    async def __call__(self, conn: Connection) -> None:
        if not await authenticate(conn, self._config.password):
            return
        conn.kind = "console"
        await Console(self._host.console_spec()).run(conn)
