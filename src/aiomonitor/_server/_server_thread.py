"""The monitor's server thread: one anyio event loop hosting the listeners.

Sockets are bound by the caller (``Monitor.start``) so that a taken port is
an ``OSError`` there, before any thread exists.  This thread only accepts and
serves clients.  It never waits on the monitored loop without a deadline, so
it keeps answering while the app's loop is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio

from .._query._audit import AuditTrail
from .._query._watchdog import PING_INTERVAL, LoopWatchdog
from ._connection import Connection
from ._door import Acceptor, Arrival, Door, farewell
from ._session import ConsoleSession, MonitorSession, SessionConfig, SessionHost
from ._socket_stream import ClientSocket
from ._workers import WorkerPool


class WebFace(Protocol):
    """The web listener the server thread hosts beside the telnet ones (``_web``)."""

    sock: socket.socket

    async def serve(self, tg: anyio.abc.TaskGroup) -> None: ...

    def close_in_forked_child(self) -> None: ...


log = logging.getLogger("aiomonitor")

T = TypeVar("T")

#: How long start() waits for the thread to come up.
_START_TIMEOUT = 10.0
#: Worker threads for commands, shared by all sessions of one monitor.
_COMMAND_THREADS = 64


@dataclass(frozen=True)
class ListenSpec:
    """A bound, listening socket and what kind of session it serves."""

    sock: socket.socket
    console_only: bool


class MonitorServer:
    """Runs sessions for one Monitor in a daemon thread.

    While any client is connected it pings the monitored loop through the
    Monitor's *watchdog*, so an unwatched app pays nothing.
    """

    def __init__(
        self,
        host: SessionHost,
        config: SessionConfig,
        listeners: list[ListenSpec],
        watchdog: LoopWatchdog,
        name: str,
        audit: AuditTrail,
        web: WebFace | None = None,
    ) -> None:
        self._host = host
        self._web = web
        self._config = config
        self._listeners = listeners
        self._watchdog = watchdog
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: anyio.Event | None = None
        #: Logged-in sessions.
        self._connections: set[Connection] = set()
        #: Logins in progress: the cap, the deadline, the throttle.
        self._door = Door(config, audit)
        self._audit = audit
        self._session_numbers = itertools.count(1)
        self._acceptor: Acceptor | None = None
        self._pinging = False

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._stop_requested is None:
            self.stop()
            raise RuntimeError("aiomonitor: the server thread failed to start (see the log)")

    def stop(self, timeout: float = 2.0) -> None:
        """Tell clients, close them and the listeners, join the thread.

        Safe from any thread.  From the server thread itself it only asks the
        thread to stop (a thread cannot join itself).
        """
        if not self._thread.is_alive():
            self._close_sockets()
            return
        if self._stop_requested is not None:
            self.call_in_server(self._stop_requested.set)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout)

    def call_in_server(self, callback: Callable[[], None]) -> None:
        """Run *callback* in the server thread soon; never blocks, never raises."""
        loop = self._loop
        if loop is None:
            return
        # RuntimeError: the server's loop is closed, nothing is left to wake.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    def host_web(self, web: WebFace) -> None:
        """Serve *web* beside the telnet listeners (before :meth:`start`)."""
        self._web = web

    def ask_for_control(self, host: str, offered: str) -> bool:
        """``control``'s check, from a worker thread: the door's, with its throttle."""
        return bool(anyio.from_thread.run(self._door.control_attempt, host, offered))

    async def run_in_worker(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in one of the worker threads commands run in (server thread)."""
        return await self._workers.run(func, *args)

    def connections(self) -> list[Connection]:
        """The connected clients (a copy; safe from any thread)."""
        return list(self._connections)

    def nonblocking_threads(self) -> set[int | None]:
        """Threads that must never wait for a client: ours and the app's loop."""
        return {self._thread.ident, self._watchdog.loop_thread_id()}

    def close_sockets_in_child(self) -> None:
        """After ``fork()``, in the child: close its copies of every socket we hold.

        Only the forking thread exists there, so nothing else touches these.
        """
        self._close_sockets()
        if self._acceptor is not None:
            self._acceptor.close_in_forked_child()
        for conn in [*self._connections, *self._door.pending()]:
            conn.close_in_forked_child()
        if self._web is not None:
            self._web.close_in_forked_child()

    def _close_sockets(self) -> None:
        for spec in self._listeners:
            spec.sock.close()
        if self._web is not None:
            self._web.sock.close()

    def _thread_main(self) -> None:
        try:
            # An explicit loop class: an app that installed a uvloop policy
            # would otherwise have it leak into our thread.
            anyio.run(self._main, backend="asyncio", backend_options={"loop_factory": asyncio.SelectorEventLoop})
        except BaseException:
            log.exception("aiomonitor: the server thread crashed")
        finally:
            self._close_sockets()
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = anyio.Event()
        self._workers = WorkerPool(_COMMAND_THREADS, self.call_in_server)
        acceptor: Acceptor | None = None
        try:
            async with anyio.create_task_group() as tg:
                acceptor = self._acceptor = Acceptor(
                    functools.partial(self._serve_client, tg),
                    tg.start_soon,
                    password_required=self._config.password is not None,
                    login_timeout=self._config.login_timeout,
                    allowed_uids=self._config.allowed_uids,
                    audit=self._audit,
                )
                for spec in self._listeners:
                    tg.start_soon(acceptor.accept_loop, spec.sock, spec.console_only)
                tg.start_soon(acceptor.usher)
                if self._web is not None:
                    tg.start_soon(self._web.serve, tg)
                self._ready.set()
                await self._stop_requested.wait()
                await self._say_goodbye()
                tg.cancel_scope.cancel()
        finally:
            if acceptor is not None:  # what was accepted and never served
                acceptor.close()

    async def _serve_client(self, tg: anyio.abc.TaskGroup, arrival: Arrival) -> None:
        stream = ClientSocket(arrival.sock)
        peer, host = arrival.describe()
        config = self._config
        try:
            conn = Connection(
                stream,
                peer,
                host,
                self.call_in_server,
                self.nonblocking_threads,
                self._workers,
                config.write_timeout,
                login_input_limit=None if config.password is None else config.login_input_limit,
            )
            conversation = (ConsoleSession if arrival.console_only else MonitorSession)(self._host)
            await conn.serve(functools.partial(self._admit, tg, conversation, arrival, host))
        except Exception:  # one client's trouble must never end the listener
            log.exception("aiomonitor: error serving %s", peer)
        finally:
            stream.close()

    async def _admit(
        self,
        tg: anyio.abc.TaskGroup,
        conversation: Callable[[Connection], Awaitable[None]],
        arrival: Arrival,
        host: str,
        conn: Connection,
    ) -> None:
        """Log the client in, find it a session, then hold the conversation."""
        config = self._config
        if config.password is not None:
            access = await self._door.log_in(tg, conn, arrival, host)
            if access is None:
                return
        else:  # no password: everyone may look; control needs the control password, if there is one
            access = "read" if config.control_password is not None else "control"
        conn.client.readonly = access == "read"
        conn.client.session = next(self._session_numbers)
        if arrival.console_only and conn.client.readonly:  # the console runs any code: control only
            self._audit.record(conn.client.who, "console", "", "refused: needs the control password")
            conn.write(farewell("The console needs the control password"))
            return
        max_sessions = self._config.max_sessions
        if max_sessions is not None and len(self._connections) >= max_sessions:
            conn.write("Too many monitor sessions are open; try again later.\n")
            return
        self._connections.add(conn)
        if not self._pinging:
            tg.start_soon(self._ping_while_watched)
        try:
            await conversation(conn)
        finally:
            self._connections.discard(conn)

    async def _ping_while_watched(self) -> None:
        self._pinging = True
        try:
            while self._connections:
                self._watchdog.ping()
                await anyio.sleep(PING_INTERVAL)
        finally:
            self._pinging = False

    async def _say_goodbye(self) -> None:
        async with anyio.create_task_group() as tg:
            for conn in list(self._connections):
                tg.start_soon(conn.say_goodbye, farewell("The monitor is shutting down"))
