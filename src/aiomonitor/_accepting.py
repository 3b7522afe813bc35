"""Accepting clients: drain the kernel's queue at once, set up only those who speak.

Setting up a client's connection (and reading, and dropping it) costs the
server thread ~0.3-1 ms of Python, holding the GIL the app needs, so it is
paced by a CPU budget (``_pacing``).  Pacing the *accept* instead would leave
connections in the kernel's backlog, first come first served: behind a
thousand idle connections the operator waited, and once the backlog was full
his connection attempts were dropped and retried for many seconds.  So:

* the accept loop takes whatever the kernel has.  With a password, each new
  client gets its ``Password:`` prompt straight away and waits in the
  :class:`Lobby`, costing a descriptor and nothing else; past the lobby's
  size the oldest are turned away, and so are those silent past the login
  deadline;
* a client that sends something (its password, or junk) leaves the lobby and
  is set up, within the budget.  An idle crowd is never set up at all, so
  the operator, who types, goes straight through.

Without a password there is no lobby: a client is served at once, paced.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import selectors
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._pacing import CpuBudget

log = logging.getLogger("aiomonitor")

#: Clients waiting silently at the password prompt, at most (descriptors held).
LOBBY_SIZE = 64
#: Connections taken from the kernel per wake-up, before other tasks run.
ACCEPT_BATCH = 64
#: An accept that fails (EMFILE: the process is out of descriptors) is retried
#: after this long, and logged at most once per ACCEPT_LOG_INTERVAL.
ACCEPT_RETRY = 0.1
ACCEPT_LOG_INTERVAL = 60.0
#: How often the lobby is swept of clients silent past the login deadline.
SWEEP_INTERVAL = 0.5

PROMPT = b"Password: "
_CROWDED = b"\r\nToo many clients are connecting; try again shortly.\r\n"


class AcceptFailures:
    """Failed accepts (EMFILE: the process is out of descriptors), logged at
    most once per ACCEPT_LOG_INTERVAL with the count since the last report."""

    def __init__(self) -> None:
        self._count = 0
        self._logged_at = -ACCEPT_LOG_INTERVAL

    def note(self, exc: OSError) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at >= ACCEPT_LOG_INTERVAL:
            log.warning("aiomonitor: accept failed (%d time(s) since the last report): %s", self._count, exc)
            self._count, self._logged_at = 0, now


async def accept_forever(
    listener: socket.socket,
    arrived: Callable[[socket.socket, Any], Awaitable[None]],
    failures: AcceptFailures,
) -> None:
    """Take what the kernel has queued on *listener*, in batches, until it is
    closed; each connection goes to *arrived*.  Server thread only."""
    listener.setblocking(False)
    while True:
        try:
            await anyio.wait_readable(listener)
        except anyio.ClosedResourceError:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):  # drained (or another process took it)
                break
            except OSError as exc:  # EMFILE and friends: back off, keep listening
                failures.note(exc)
                await anyio.sleep(ACCEPT_RETRY)
                break
            await arrived(sock, address)
        await anyio.sleep(0)  # let sessions run between batches


@dataclass(frozen=True, eq=False)
class Arrival:
    """An accepted connection, not yet set up."""

    sock: socket.socket
    address: Any
    console_only: bool
    #: Whether it has been sent the password prompt already.
    prompted: bool = False
    at: float = field(default_factory=time.monotonic)


class Lobby:
    """Prompted clients that have not spoken yet, oldest first, in a selector of our own.

    The selector's descriptor is itself waited on by the usher: one wait for
    the whole lobby, however many sit in it.
    """

    def __init__(self, size: int = LOBBY_SIZE) -> None:
        self._size = size
        self._selector = selectors.DefaultSelector()
        self._waiting: collections.OrderedDict[socket.socket, Arrival] = collections.OrderedDict()

    def fileno(self) -> int:
        return self._selector.fileno()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, arrival: Arrival) -> list[Arrival]:
        """Seat *arrival*; the oldest it pushes out (to be turned away)."""
        self._waiting[arrival.sock] = arrival
        self._selector.register(arrival.sock, selectors.EVENT_READ, arrival)
        pushed_out = []
        while len(self._waiting) > self._size:
            pushed_out.append(self._remove(next(iter(self._waiting))))
        return pushed_out

    def spoken(self) -> list[Arrival]:
        """Those who sent something (or left), oldest first; they leave the lobby."""
        ready: list[Arrival] = [key.data for key, _ in self._selector.select(0)]
        for arrival in ready:
            self._remove(arrival.sock)
        return sorted(ready, key=lambda arrival: arrival.at)

    def silent_since(self, deadline: float) -> list[Arrival]:
        """Those waiting since before *deadline*; they leave the lobby."""
        stale = []
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if oldest.at >= deadline:
                break
            stale.append(self._remove(oldest.sock))
        return stale

    def close(self) -> None:
        for sock in list(self._waiting):
            self._remove(sock).sock.close()
        self._selector.close()

    def close_in_forked_child(self) -> None:
        """Close this process's descriptors without unregistering anything: an
        epoll set is shared with the parent across fork, and unregistering here
        would take the parent's waiting clients out of its own lobby."""
        for sock in self._waiting:
            sock.close()
        self._waiting.clear()
        self._selector.close()  # closes the descriptor only: no epoll_ctl

    def _remove(self, sock: socket.socket) -> Arrival:
        self._selector.unregister(sock)
        return self._waiting.pop(sock)


def turn_away(arrival: Arrival, message: bytes) -> None:
    """Say why, if the socket takes it at once, and close."""
    with contextlib.suppress(OSError):
        arrival.sock.send(message)
    arrival.sock.close()


class Acceptor:
    """One server's accept loops and lobby (server thread only)."""

    def __init__(
        self,
        serve: Callable[[Arrival], Awaitable[None]],
        spawn: Callable[..., object],
        password_required: bool,
        login_timeout: float,
    ) -> None:
        self._serve = serve
        self._spawn = spawn
        self._password_required = password_required
        self._login_timeout = login_timeout
        self._lobby = Lobby()
        #: Handed to a serving task that has not started yet (closed by close() if it never does).
        self._unclaimed: set[socket.socket] = set()
        self._budget = CpuBudget()  # made in the server thread: it reads that thread's CPU time
        self._failures = AcceptFailures()

    async def accept_loop(self, listener: socket.socket, console_only: bool) -> None:
        async def arrived(sock: socket.socket, address: Any) -> None:
            await self._arrived(Arrival(sock, address, console_only))

        await accept_forever(listener, arrived, self._failures)

    async def _arrived(self, arrival: Arrival) -> None:
        if not self._password_required:
            await self._set_up(arrival)
            return
        sock = arrival.sock
        sock.setblocking(False)
        try:
            sock.send(PROMPT)  # a fresh socket's buffer takes it whole
        except OSError:
            sock.close()
            return
        for pushed_out in self._lobby.add(dataclasses.replace(arrival, prompted=True)):
            turn_away(pushed_out, _CROWDED)

    async def usher(self) -> None:
        """Set up the clients that speak, within the budget; sweep out the silent."""
        if not self._password_required:
            return
        while True:
            with anyio.move_on_after(SWEEP_INTERVAL):
                await anyio.wait_readable(self._lobby.fileno())
            spoken = self._lobby.spoken()
            self._unclaimed.update(arrival.sock for arrival in spoken)  # owned here until served
            for arrival in spoken:
                await self._set_up(arrival)
            silent = self._lobby.silent_since(time.monotonic() - self._login_timeout)
            for arrival in silent:
                turn_away(arrival, f"\r\nNo password within {self._login_timeout:g} s; bye.\r\n".encode())

    async def _set_up(self, arrival: Arrival) -> None:
        self._unclaimed.add(arrival.sock)  # (until its task starts; see close())
        self._spawn(self._claim_and_serve, arrival)
        pause = self._budget.delay()
        if pause:
            await anyio.sleep(pause)

    async def _claim_and_serve(self, arrival: Arrival) -> None:
        self._unclaimed.discard(arrival.sock)  # from here on, serving closes it
        await self._serve(arrival)

    def close(self) -> None:
        """Close what was accepted and never served (after the tasks have ended)."""
        self._lobby.close()
        while self._unclaimed:
            self._unclaimed.pop().close()

    def close_in_forked_child(self) -> None:
        self._lobby.close_in_forked_child()
        while self._unclaimed:
            self._unclaimed.pop().close()
