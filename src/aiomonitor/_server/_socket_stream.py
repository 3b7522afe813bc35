"""A client's socket, read only as fast as we parse it.

anyio's asyncio socket streams read everything that arrives into a queue
without limit (there is no read backpressure): a client sending faster than
we parse would grow that queue without bound, and the server thread would
copy megabytes from the kernel for a client it is about to drop (a
reconnecting flood cost the app 17% of its heartbeat that way).  Here
``receive`` is one ``recv`` of at most the size asked for, so what we don't
read stays in the kernel and TCP tells the client to wait.

Server thread only, on anyio's asyncio backend (``wait_readable`` needs a
selector loop, which the server thread always runs).
"""

from __future__ import annotations

import math
import socket

import anyio


class ClientSocket:
    """A connected, non-blocking socket with the two awaitable calls a Connection needs."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Prompts and short answers: don't hold them back waiting for an ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock

    async def receive(self, max_bytes: int) -> bytes:
        """Up to *max_bytes*; ``b""`` once the client has closed its side.

        Raises ``OSError`` if the connection broke.
        """
        while True:
            try:
                return self.sock.recv(max_bytes)
            except (BlockingIOError, InterruptedError):
                await anyio.wait_readable(self.sock)

    def has_input(self) -> bool:
        """Whether bytes from the client wait to be read (not its end: that is no input)."""
        try:
            return bool(self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # BlockingIOError: nothing yet; others: the connection is broken
            return False

    async def send(self, data: bytes | memoryview, idle_timeout: float = math.inf) -> None:
        """All of *data*, waiting while the client's window is full.

        Raises ``TimeoutError`` once the client has taken no byte for
        *idle_timeout* seconds: a client is judged by its progress, never by
        the size of what it is sent, so a reader that keeps up gets any
        amount, however long that takes.
        """
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                with anyio.fail_after(idle_timeout):
                    await anyio.wait_writable(self.sock)
                continue
            view = view[sent:]

    def close(self) -> None:
        """Close at once (idempotent); a task waiting on the socket is woken first."""
        if self.sock.fileno() >= 0:
            anyio.notify_closing(self.sock)
        self.sock.close()

    def close_in_forked_child(self) -> None:
        """Close this process's copy of the descriptor, touching no event loop."""
        self.sock.close()
