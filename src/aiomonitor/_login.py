"""Logging in: the password prompt, and what makes guessing it slow.

The password guards a door into the process (the console runs any code), so
guessing must be slow for everyone at once, not per connection: an attacker
opens as many connections as they like.  :class:`LoginThrottle` is pure logic
on a clock passed in (unit-tested without sockets); :func:`log_in` is the
conversation that uses it, in the server thread.

What is delayed is only the *answer to a wrong password*: a right one is let
in at once, however busy the guessers keep the throttle.
"""

from __future__ import annotations

import hmac
import logging
import math
from dataclasses import dataclass, field

import anyio

from ._connection import Connection
from ._protocol.telnet import EndOfInput, Line

log = logging.getLogger("aiomonitor")

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


async def log_in(conn: Connection, password: str, throttle: LoginThrottle, host: str, prompted: bool = False) -> bool:
    """Ask for *password* (*prompted*: the first prompt was sent); True once given,
    False if the client failed or left."""
    for attempt in range(AUTH_ATTEMPTS):
        if attempt or not prompted:
            conn.write("Password: ")
        event = await conn.next_event()
        while not isinstance(event, (Line, EndOfInput)):  # Ctrl-C at the prompt: ask again
            conn.write("\nPassword: ")
            event = await conn.next_event()
        if isinstance(event, EndOfInput):
            return False
        if hmac.compare_digest(event.text.encode(), password.encode()):
            return True
        await anyio.sleep(throttle.failure(host, anyio.current_time()))
        conn.write("Wrong password.\n")
    conn.write("Too many failed attempts; bye.\n")
    return False
