"""How responsive the monitored loop is, measured from outside it.

The server pings the loop (a no-op callback through the backend) ten times a
second, but only while a client is connected, so an unwatched app pays
nothing.  A ping that is not answered means the loop is blocked; how late
answered pings run is the loop's lag.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

from .._gil._relay import Relay
from ..backends import Backend, LoopUnresponsive

#: Ping period while clients are connected.
PING_INTERVAL = 0.1
#: How long a probe waits for the loop before calling it blocked.
PROBE_TIMEOUT = 0.25
#: How far back "worst recent lag" looks, in seconds.
LAG_WINDOW = 60.0


class LoopWatchdog:
    """Thread-safe record of the monitored loop's responsiveness."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._unanswered_since: float | None = None
        #: The ping posted and not answered yet, if any (see ``ping``).
        self._in_flight: Relay | None = None
        self._lags: deque[tuple[float, float]] = deque(maxlen=int(LAG_WINDOW / PING_INTERVAL))

    def ping(self) -> Relay:
        """Post a ping (any thread, never blocks); the relay is set on answer.

        While one is unanswered, that one is shared: fifty clients typing
        ``ps`` at once probed the loop fifty times, fifty callbacks for the
        app's loop to run, where one answer says the same.  The answer wakes
        one of the threads waiting, and each the next (see ``_relay``).
        """
        posted = time.monotonic()
        with self._lock:
            if self._in_flight is not None:
                return self._in_flight
            answered = self._in_flight = Relay()
            if self._unanswered_since is None:
                self._unanswered_since = posted

        def pong() -> None:  # runs in the monitored loop: must not raise
            now = time.monotonic()
            with self._lock:
                self._unanswered_since = None
                self._in_flight = None
                self._lags.append((now, now - posted))
            answered.set()

        with contextlib.suppress(LoopUnresponsive):  # a closed loop never answers: blocked_for grows
            self._backend.call_soon(pong)
        return answered

    def loop_thread_id(self) -> int | None:
        """The thread running the monitored loop, if known yet."""
        return self._backend.loop_thread_id()

    def blocked_for(self) -> float:
        """Seconds since the oldest unanswered ping (0.0 if none is pending)."""
        with self._lock:
            since = self._unanswered_since
        return 0.0 if since is None else time.monotonic() - since

    def probe(self, timeout: float = PROBE_TIMEOUT) -> float:
        """0.0 if the loop answers within *timeout*, else how long it has been stuck.

        Blocks the calling worker thread for at most *timeout*.
        """
        if self.ping().wait(timeout):
            return 0.0
        return self.blocked_for()

    def worst_lag(self, window: float = LAG_WINDOW) -> float:
        """The longest delay of an answered ping in the last *window* seconds."""
        horizon = time.monotonic() - window
        with self._lock:
            lags = [lag for at, lag in self._lags if at >= horizon]
        return max(lags, default=0.0)
