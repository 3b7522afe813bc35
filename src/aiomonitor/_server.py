"""The monitor's server thread: one anyio event loop hosting the listeners.

Sockets are bound by the caller (``Monitor.start``) so that a taken port is
an ``OSError`` there, before any thread exists.  This thread only accepts and
serves clients.  It never waits on the monitored loop without a deadline, so
it keeps answering while the app's loop is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener

from ._connection import Connection
from ._session import ConsoleSession, MonitorSession, SessionConfig, SessionHost
from ._watchdog import PING_INTERVAL, LoopWatchdog

log = logging.getLogger("aiomonitor")

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
    ) -> None:
        self._host = host
        self._config = config
        self._listeners = listeners
        self._watchdog = watchdog
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: anyio.Event | None = None
        self._connections: set[Connection] = set()
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

    def connections(self) -> list[Connection]:
        """The connected clients (a copy; safe from any thread)."""
        return list(self._connections)

    def nonblocking_threads(self) -> set[int | None]:
        """Threads that must never wait for a client: ours and the app's loop."""
        return {self._thread.ident, self._watchdog.loop_thread_id()}

    def _close_sockets(self) -> None:
        for spec in self._listeners:
            spec.sock.close()

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
        self._limiter = anyio.CapacityLimiter(_COMMAND_THREADS)
        listeners = [(await SocketListener.from_socket(spec.sock), spec.console_only) for spec in self._listeners]
        async with anyio.create_task_group() as tg:
            for listener, console_only in listeners:
                tg.start_soon(self._accept_loop, tg, listener, console_only)
            self._ready.set()
            await self._stop_requested.wait()
            await self._say_goodbye()
            tg.cancel_scope.cancel()
        for listener, _ in listeners:
            await anyio.aclose_forcefully(listener)

    async def _accept_loop(self, tg: anyio.abc.TaskGroup, listener: SocketListener, console_only: bool) -> None:
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: back off, keep listening
                log.warning("aiomonitor: accept failed: %s", exc)
                await anyio.sleep(0.1)
                continue
            tg.start_soon(self._serve_client, tg, stream, console_only)

    async def _serve_client(self, tg: anyio.abc.TaskGroup, stream: ByteStream, console_only: bool) -> None:
        peer = str(stream.extra(SocketAttribute.remote_address, "?"))  # noqa: S610 - anyio, not Django
        try:
            max_sessions = self._config.max_sessions
            if max_sessions is not None and len(self._connections) >= max_sessions:
                await stream.send(b"Too many monitor sessions are open; try again later.\r\n")
                return
            conn = Connection(
                stream, peer, self.call_in_server, self.nonblocking_threads, self._limiter, self._config.write_timeout
            )
            conversation = (ConsoleSession if console_only else MonitorSession)(self._host, self._config)
            self._connections.add(conn)
            if not self._pinging:
                tg.start_soon(self._ping_while_watched)
            try:
                await conn.serve(conversation)
            finally:
                self._connections.discard(conn)
        except Exception:  # one client's trouble must never end the listener
            log.exception("aiomonitor: error serving %s", peer)
        finally:
            await anyio.aclose_forcefully(stream)

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
                tg.start_soon(conn.say_goodbye, "\nThe monitor is shutting down; bye.\n")
