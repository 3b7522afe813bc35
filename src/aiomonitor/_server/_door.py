"""The door: a client's life before its session, in the server thread.

Accepting, the lobby of prompted clients, the cap on logins in progress,
the login deadline, the password exchange, what makes guessing it slow, and
every farewell said at the door live here, and nowhere else.

Setting up a client's connection (and reading, and dropping it) costs the
server thread ~0.3-1 ms of Python, holding the GIL the app needs, so it is
paced by a CPU budget (``_pacing``).  Pacing the *accept* instead would leave
connections in the kernel's backlog, first come first served: behind a
thousand idle connections the operator would wait, and once the backlog was
full his connection attempts would be dropped and retried for many seconds.
So:

* the accept loop (``_listen.accept_forever``) takes whatever the kernel
  has.  With a password, each new client gets its prompt straight away and
  waits in the :class:`Lobby`, costing a descriptor and nothing else; past
  the lobby's size the oldest are turned away, and so are those silent past
  the login deadline;
* a client that sends something (its password, or junk) leaves the lobby and
  is set up, within the budget.  An idle crowd is never set up at all, so
  the operator, who types, goes straight through;
* at most ``max_pending_logins`` clients type their password at once; past
  that the oldest silent one goes (:func:`first_to_go`).

The password guards a door into the process (the console runs any code), so
guessing must be slow for everyone at once, not per connection: an attacker
opens as many connections as they like.  :class:`LoginThrottle` is pure logic
on a clock passed in (unit-tested without sockets).  What is delayed is only
the *answer to a wrong password*: a right one is let in at once, however busy
the guessers keep the throttle.

Without a password there is no lobby: a client is served at once, paced.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hmac
import logging
import math
import os
import selectors
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.abc

from .._protocol.telnet import EndOfInput, Line, encode_output
from .._query._audit import AuditTrail
from ._connection import Connection
from ._listen import AcceptFailures, accept_forever, describe_peer
from ._pacing import CpuBudget
from ._session import SessionConfig

log = logging.getLogger("aiomonitor")

T = TypeVar("T")

#: What the door asks, the one place it is written.
PASSWORD_PROMPT = "Password: "  # noqa: S105 - the prompt, not a password
#: Clients waiting silently at the password prompt, at most (descriptors held).
LOBBY_SIZE = 64
#: How often the lobby is swept of clients silent past the login deadline.
SWEEP_INTERVAL = 0.5
#: Password attempts before the connection is dropped.
AUTH_ATTEMPTS = 3
#: Every wrong password waits at least this long for its answer.
FAILURE_DELAY = 0.5
#: Wrong passwords are answered one after another, this far apart per recent
#: failure (so the spacing grows with an attack), up to MAX_FAILURE_SPACING.
#: 8 guessers for 5 s get ~30 answers in all, where an unthrottled server
#: answered 6,000.
FAILURE_SPACING = 0.02
MAX_FAILURE_SPACING = 2.0
#: How fast the memory of failures fades (seconds for it to fall to 1/e).
FAILURE_MEMORY = 60.0
#: A burst of failures from one host ends after this long without one.
BURST_QUIET = 10.0
#: Hosts tracked at once; failures from more are counted together (memory stays bounded).
MAX_BURSTS = 1000


_PROMPT_BYTES = PASSWORD_PROMPT.encode()


def farewell(reason: str) -> str:
    """What a client is told as the door closes on it: one line, then bye."""
    return f"\n{reason}; bye.\n"


def first_to_go(candidates: Iterable[T], idle: Callable[[T], bool]) -> T | None:
    """Of *candidates* (oldest first), the one to drop for room: the oldest
    idle one, else the oldest.  A real client speaks within a round trip, so
    a crowd of idle connections pushes out only its own members."""
    oldest = None
    for candidate in candidates:
        if idle(candidate):
            return candidate
        if oldest is None:
            oldest = candidate
    return oldest


@dataclass(frozen=True, eq=False)
class Arrival:
    """An accepted connection, not yet set up."""

    sock: socket.socket
    address: Any
    console_only: bool
    #: Whether it has been sent the password prompt already.
    prompted: bool = False
    #: A unix socket's peer: its (pid, uid), where the system says.
    credentials: tuple[int, int] | None = None

    def describe(self) -> tuple[str, str]:
        """``who`` and the log's name for the client, and the host failed logins are counted by."""
        if self.credentials is not None:
            pid, uid = self.credentials
            return f"uid {uid} pid {pid}", f"uid {uid}"
        return describe_peer(self.address)

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
        while len(self._waiting) > self._size:  # all are silent here: the oldest goes
            going = first_to_go(self._waiting, lambda _sock: True)
            assert going is not None
            pushed_out.append(self._remove(going))
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


def peer_credentials(sock: socket.socket) -> tuple[int, int] | None:
    """The (pid, uid) of the process at the other end of a unix socket, where
    the system says (``SO_PEERCRED``, Linux); None where it can't."""
    option = getattr(socket, "SO_PEERCRED", None)
    if sock.family != getattr(socket, "AF_UNIX", None) or option is None:
        return None
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError:
        return None
    return pid, uid


def default_allowed_uids() -> frozenset[int]:
    """Who may connect to a unix socket by default: the app's own user, and root."""
    return frozenset({os.getuid(), 0})


class Acceptor:
    """One server's accept loops and lobby (server thread only)."""

    def __init__(
        self,
        serve: Callable[[Arrival], Awaitable[None]],
        spawn: Callable[..., object],
        password_required: bool,
        login_timeout: float,
        allowed_uids: frozenset[int] | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self._serve = serve
        self._spawn = spawn
        self._password_required = password_required
        self._login_timeout = login_timeout
        #: A unix socket's peer must run as one of these (None: anyone who can open it).
        self._allowed_uids = allowed_uids
        self._audit = audit
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
        credentials = peer_credentials(arrival.sock)
        if credentials is not None:
            arrival = dataclasses.replace(arrival, credentials=credentials)
            if self._allowed_uids is not None and credentials[1] not in self._allowed_uids:
                if self._audit is not None:
                    self._audit.record(arrival.describe()[0], "connect", "", "refused: uid not allowed")
                turn_away(arrival, encode_output(farewell("Not allowed for this user")))
                return
        if not self._password_required:
            await self._set_up(arrival)
            return
        sock = arrival.sock
        sock.setblocking(False)
        try:
            sock.send(_PROMPT_BYTES)  # a fresh socket's buffer takes it whole
        except OSError:
            sock.close()
            return
        for pushed_out in self._lobby.add(dataclasses.replace(arrival, prompted=True)):
            turn_away(pushed_out, encode_output(farewell("Too many clients are connecting; try again shortly")))

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
                turn_away(arrival, encode_output(farewell(f"No password within {self._login_timeout:g} s")))

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


@dataclass
class Burst:
    """Failed logins from one host, reported once when they stop."""

    host: str
    started: float
    last: float
    failures: int = 0


@dataclass
class LoginThrottle:
    """Paces answers to wrong passwords, across all connections of one monitor.

    Each failure is answered no sooner than :data:`FAILURE_DELAY` after it,
    and no sooner than the previous failure's answer plus a spacing that grows
    with the failures of the last minute or so.  Bookkeeping is O(1) per
    failure plus one entry per guessing host until its burst is reported.
    """

    _score: float = 0.0
    _scored_at: float = 0.0
    _next_answer: float = 0.0
    _bursts: dict[str, Burst] = field(default_factory=dict)

    def failure(self, host: str, now: float) -> float:
        """Count a wrong password from *host*; how long to wait before answering."""
        self._score = self._score * math.exp(-(now - self._scored_at) / FAILURE_MEMORY) + 1.0
        self._scored_at = now
        answer_at = max(now + FAILURE_DELAY, self._next_answer)
        self._next_answer = answer_at + min(MAX_FAILURE_SPACING, FAILURE_SPACING * self._score)
        if host not in self._bursts and len(self._bursts) >= MAX_BURSTS:
            host = "(other hosts)"
        burst = self._bursts.get(host)
        if burst is None:
            burst = self._bursts[host] = Burst(host, now, now)
            log.warning("aiomonitor: failed password from %s (a burst is summarised when it ends)", host)
        burst.failures += 1
        burst.last = now
        return answer_at - now

    def ended_bursts(self, now: float) -> list[Burst]:
        """Bursts quiet for :data:`BURST_QUIET` seconds, forgotten once returned."""
        ended = [b for b in self._bursts.values() if now - b.last >= BURST_QUIET]
        for burst in ended:
            del self._bursts[burst.host]
        return ended

    @property
    def has_bursts(self) -> bool:
        return bool(self._bursts)


def report_burst(burst: Burst) -> None:
    log.warning(
        "aiomonitor: %d failed password attempt(s) from %s over %.0f s",
        burst.failures,
        burst.host,
        burst.last - burst.started,
    )


def matches(offered: str, secret: str | None) -> bool:
    """Whether *offered* is *secret*, compared in constant time (None matches nothing)."""
    return secret is not None and hmac.compare_digest(offered.encode(), secret.encode())


async def log_in(
    conn: Connection, passwords: tuple[str | None, str | None], throttle: LoginThrottle, host: str, prompted: bool
) -> str | None:
    """Ask for one of *passwords* (the plain one, the control one; *prompted*:
    the first prompt was sent).  "control" or "read" once given (the plain one
    opens a read-only session only where a control password exists); None if
    the client failed or left."""
    password, control = passwords
    for attempt in range(AUTH_ATTEMPTS):
        if attempt or not prompted:
            conn.write(PASSWORD_PROMPT)
        event = await conn.next_event()
        while not isinstance(event, (Line, EndOfInput)):  # Ctrl-C at the prompt: ask again
            conn.write("\n" + PASSWORD_PROMPT)
            event = await conn.next_event()
        if isinstance(event, EndOfInput):
            return None
        if matches(event.text, control):
            return "control"
        if matches(event.text, password):
            return "read" if control is not None else "control"
        await anyio.sleep(throttle.failure(host, anyio.current_time()))
        conn.write("Wrong password.\n")
    conn.write(farewell("Too many failed attempts"))
    return None


class Door:
    """Logins in progress (server thread): at most ``max_pending_logins`` at
    once, each within the login deadline (counted from the connection, the
    lobby's wait included), and failed-login bursts reported once each."""

    def __init__(self, config: SessionConfig, audit: AuditTrail) -> None:
        self._config = config
        self._audit = audit
        self._throttle = LoginThrottle()
        #: Connections at the password prompt, oldest first.
        self._pending: dict[Connection, None] = {}
        self._reporting_bursts = False

    def pending(self) -> list[Connection]:
        return list(self._pending)

    async def control_attempt(self, host: str, offered: str) -> bool:
        """A session asking for control (``control``): right, or wrong after
        the same delay as a wrong login, counted with them (server thread)."""
        if matches(offered, self._config.control_password):
            return True
        await anyio.sleep(self._throttle.failure(host, anyio.current_time()))
        return False

    async def log_in(self, tg: anyio.abc.TaskGroup, conn: Connection, arrival: Arrival, host: str) -> str | None:
        """The password exchange for *conn*: the access it earned ("control"
        or "read"), or None.

        When the cap is reached the oldest *silent* waiting login goes (nothing
        sent, nothing on its way), else the oldest: a crowd of idle or slow
        connections pushes out only its own members, and never locks out an
        operator arriving after it, even while his password is still in flight.
        """
        config = self._config
        self._pending[conn] = None
        while len(self._pending) > config.max_pending_logins:
            victim = first_to_go(self._pending, Connection.is_silent)
            assert victim is not None
            del self._pending[victim]
            tg.start_soon(victim.say_goodbye, farewell("Too many clients are logging in"))
        try:
            with anyio.move_on_after(arrival.at + config.login_timeout - time.monotonic()):
                passwords = (config.password, config.control_password)
                access = await log_in(conn, passwords, self._throttle, host, arrival.prompted)
                if access is not None:
                    conn.logged_in()
                return access
            conn.write(farewell(f"No password within {config.login_timeout:g} s"))
            return None
        finally:
            self._pending.pop(conn, None)
            if not self._reporting_bursts and self._throttle.has_bursts:
                self._reporting_bursts = True  # (now: two logins may end in one tick)
                tg.start_soon(self._report_bursts)

    async def _report_bursts(self) -> None:
        """Log each burst of failed logins once, when it ends (not a line per guess)."""
        try:
            while self._throttle.has_bursts:
                await anyio.sleep(BURST_QUIET / 2)
                for burst in self._throttle.ended_bursts(anyio.current_time()):
                    report_burst(burst)
                    span = f"{burst.failures} failed password attempt(s) over {burst.last - burst.started:.0f} s"
                    self._audit.record(burst.host, "login", "", span)
        finally:
            self._reporting_bursts = False
