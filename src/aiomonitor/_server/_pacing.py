"""How much of the CPU (and so of the GIL) the server thread may spend on strangers.

Every connection costs the server thread some Python work before it has
proved anything: accepting, setting up, reading and dropping it.  While it
runs, that work holds the GIL the app needs.  A count of connections per
second can't bound it: an idle connection costs a tenth of one that floods
us, and a fixed rate low enough for floods lets an idle crowd queue ahead of
the operator for many seconds.  So the accept loop is paced by what the
server thread actually spent: past :data:`SHARE` of one core (after a burst
of :data:`BURST` seconds of CPU), accepting waits until the average is back
under it.  Cheap connections flow fast, dear ones slowly, the app keeps the rest.

Measured (``benchmarks/run.py --only hostile``): a client reconnecting and
flooding before the password left the app's heartbeat at 0.83 of its rate
with no pacing; the figures with it are in the README.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: The share of one core the server thread may use while connections keep coming.
SHARE = 0.05
#: CPU seconds it may spend at once before the share applies.
BURST = 0.1


class CpuBudget:
    """A token bucket filled with CPU time: *share* of wall time, up to *burst*.

    Pure logic on two clocks passed in (the thread's CPU time and wall time),
    so it is tested without threads.  Call :meth:`delay` from the thread
    whose CPU time *cpu_clock* measures.
    """

    def __init__(
        self,
        share: float = SHARE,
        burst: float = BURST,
        cpu_clock: Callable[[], float] = time.thread_time,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._share = share
        self._burst = burst
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._cpu = cpu_clock()
        self._wall = wall_clock()
        self._balance = burst

    def delay(self) -> float:
        """Seconds to wait before the next piece of work (0 while within budget)."""
        cpu, wall = self._cpu_clock(), self._wall_clock()
        earned = (wall - self._wall) * self._share
        spent = cpu - self._cpu
        self._cpu, self._wall = cpu, wall
        self._balance = min(self._burst, self._balance + earned - spent)
        return 0.0 if self._balance >= 0 else -self._balance / self._share
