"""The web listener, inside the monitor's server thread: accept, cap, serve.

It shares the server thread (and its anyio loop) with the telnet listeners,
so the dashboard answers while the app's loop is blocked, and the worker
pool with the commands, so heavy reads from browsers and from telnet
clients queue for the same turns.

Connections are capped at ``MAX_CONNECTIONS``.  Past the cap, a new
connection pushes out the oldest one that is waiting for a request (a
browser keeps idle keep-alive connections open; an idle crowd must never
lock out the operator arriving after it); when none is waiting, all are
answering, and the newcomer is closed at once.  An idle connection is also
closed after ``REQUEST_TIMEOUT``.

Server thread only, except :meth:`close_in_forked_child`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

from .._server._door import first_to_go
from .._server._listen import AcceptFailures, accept_forever, describe_peer
from .._server._socket_stream import ClientSocket
from . import _http

log = logging.getLogger("aiomonitor")

#: Runs a blocking call in a worker thread (``WorkerPool.run``).
RunInWorker = Callable[..., Awaitable[Any]]

#: Web connections open at once, at most.
MAX_CONNECTIONS = 32
#: A connection waiting this long for its next request (or for the rest of one) is closed.
REQUEST_TIMEOUT = 30.0


class WebListener:
    def __init__(
        self,
        sock: socket.socket,
        handler: _http.Handler,
        write_timeout: float,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        """*handler* answers each request (the web app, ``_routes``)."""
        self.sock = sock
        self._handler = handler
        self._write_timeout = write_timeout
        self._max_connections = max_connections
        #: Open connections, oldest first.
        self._open: collections.OrderedDict[ClientSocket, _http.ConnectionState] = collections.OrderedDict()

    def connection_count(self) -> int:
        """How many web connections are open (any thread: a length read)."""
        return len(self._open)

    async def serve(self, tg: anyio.abc.TaskGroup) -> None:
        handler = self._handler

        async def arrived(client: socket.socket, address: Any) -> None:
            stream = ClientSocket(client)
            if not self._make_room():
                stream.close()
                return
            state = _http.ConnectionState(describe_peer(address)[0])
            self._open[stream] = state
            tg.start_soon(self._serve_one, stream, state, handler)

        await accept_forever(self.sock, arrived, AcceptFailures())

    def _make_room(self) -> bool:
        """Whether a new connection may open, closing the oldest idle one if need be."""
        if len(self._open) < self._max_connections:
            return True
        going = first_to_go(self._open, lambda stream: self._open[stream].idle)
        if going is None or not self._open[going].idle:  # all busy: no room
            return False
        del self._open[going]
        going.close()  # its task wakes with ClosedResourceError and ends
        return True

    async def _serve_one(self, stream: ClientSocket, state: _http.ConnectionState, handler: _http.Handler) -> None:
        try:
            await _http.serve(
                stream, handler, state, request_timeout=REQUEST_TIMEOUT, write_timeout=self._write_timeout
            )
        except Exception:  # one connection's trouble never ends the listener
            log.exception("aiomonitor: error serving a web client")
        finally:
            self._open.pop(stream, None)
            stream.close()

    def close_in_forked_child(self) -> None:
        self.sock.close()
        for stream in list(self._open):
            with contextlib.suppress(OSError):
                stream.close_in_forked_child()
