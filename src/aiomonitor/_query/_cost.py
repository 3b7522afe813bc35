"""The monitor's own bill: what watching costs the app, measured, not assumed.

* **CPU.**  The CPU time of the monitor's threads (all named
  ``aiomonitor-...``), read from ``/proc/self/task/*/stat`` (Linux; None
  elsewhere) each time the bill is asked for and every ``CPU_SAMPLE_EVERY``
  seconds from the stall recorder's thread, so "the last minute" is known.
  A thread that ended keeps what it spent (deltas are summed per thread).
* **Stalls.**  After each command, the worst lateness of the loop's
  heartbeat while it ran (the stall recorder's beats: a bound from above,
  as the app may have stalled on its own meanwhile), kept for an hour.
* **Memory.**  What tracing holds (records per live task, the creation
  chains of ended creators, the history) is measured from the objects by
  the backend (``Backend.tracing_memory``); the flight recorder's and the
  stall recorder's from theirs.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..backends import Backend, TracingMemory
from ._stalls import StallRecorder
from ._trend import TrendRecorder

#: Seconds between two CPU samples taken by the stall recorder's thread.
CPU_SAMPLE_EVERY = 10.0
#: How far back "the last minute" and "the last hour" look.
MINUTE = 60.0
HOUR = 3600.0
#: Command stalls remembered at most (the worst of an hour is what is asked).
MAX_COMMAND_STALLS = 2000
#: The prefix of every thread of the monitor's.
OWN_THREADS = "aiomonitor"


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


_TICKS = _clock_ticks()


def thread_cpu(native_id: int) -> float | None:
    """CPU seconds one thread of this process has used (Linux), else None."""
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the name: state is field 3; utime 14 and stime 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class CommandStall:
    at: float  # wall clock, when it ended
    command: str
    seconds: float


class MonitorBill:
    """CPU of the monitor's threads and the stalls its commands caused (thread-safe)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._per_thread: dict[int, float] = {}
        self._total = 0.0
        self._known = True
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=int(HOUR / CPU_SAMPLE_EVERY))
        self._next_sample = 0.0
        self._stalls: collections.deque[CommandStall] = collections.deque(maxlen=MAX_COMMAND_STALLS)

    # -- CPU -------------------------------------------------------------------------

    def sample_cpu(self) -> None:
        """Add what the monitor's threads spent since the last sample."""
        now = self._clock()
        found: dict[int, float] = {}
        for thread in threading.enumerate():
            native = thread.native_id
            if native is None or not thread.name.startswith(OWN_THREADS):
                continue
            spent = thread_cpu(native)
            if spent is None:
                self._known = False
                return
            found[native] = spent
        with self._lock:
            for native, spent in found.items():
                self._total += max(0.0, spent - self._per_thread.get(native, 0.0))
            self._per_thread = found
            self._samples.append((now, self._total))

    def maybe_sample_cpu(self, _: float = 0.0) -> None:
        """``sample_cpu`` if the last was ``CPU_SAMPLE_EVERY`` ago (a stall recorder's listener)."""
        now = self._clock()
        if now >= self._next_sample:
            self._next_sample = now + CPU_SAMPLE_EVERY
            self.sample_cpu()

    def cpu(self, window: float = MINUTE) -> tuple[float, float] | None:
        """(CPU seconds spent, over how many seconds) for the last *window*; None where unknown."""
        self.sample_cpu()
        if not self._known:
            return None
        with self._lock:
            now, total = self._samples[-1]
            start, then = next(((t, c) for t, c in self._samples if t >= now - window), (now, total))
        return total - then, now - start

    @property
    def total_cpu(self) -> float | None:
        """CPU seconds the monitor's threads spent since it started (None where unknown)."""
        return self._total if self._known else None

    # -- stalls ----------------------------------------------------------------------

    def command_done(self, command: str, stall: float) -> None:
        if stall > 0:
            with self._lock:
                self._stalls.append(CommandStall(self._wall_clock(), command, stall))

    def worst_stall(self, window: float = HOUR) -> CommandStall | None:
        horizon = self._wall_clock() - window
        with self._lock:
            recent = [item for item in self._stalls if item.at >= horizon]
        return max(recent, key=lambda item: item.seconds, default=None)


@dataclass(frozen=True)
class Bill:
    """``cost``'s figures, each measured when asked."""

    #: (CPU seconds, over how many seconds) of the last minute; None where unknown.
    cpu: tuple[float, float] | None
    total_cpu: float | None
    worst_stall: CommandStall | None
    #: Whether tasks created now are traced, in words.
    tracing: str
    tracing_memory: TracingMemory | None
    flight_recorder_bytes: int | None
    stall_recorder_bytes: int


def bill_of(bill: MonitorBill, backend: Backend, recorder: StallRecorder, trend: TrendRecorder | None) -> Bill:
    """Every figure of ``cost`` (reads every traced task: a heavy computation)."""
    if backend.tracing:
        since = (
            time.strftime("%H:%M:%S", time.localtime(backend.tracing_since)) if backend.tracing_since else "the start"
        )
        history = f"a history of {backend.history_size:,}" if backend.keeps_history else "no history"
        tracing = f"on since {since} ({history}, {'step timing' if backend.timed else 'no step timing'})"
    else:
        tracing = "off" + (" (the tasks traced before keep their records)" if backend.traced else "")
    with backend.one_look():
        memory = backend.tracing_memory()
    return Bill(
        bill.cpu(),
        bill.total_cpu,
        bill.worst_stall(),
        tracing,
        memory,
        trend.memory() if trend is not None else None,
        recorder.memory(),
    )
