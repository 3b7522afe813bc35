"""Stalls of the monitored loop, remembered even when nobody was watching.

The person paged for a stall connects after it is over; the watchdog, which
pings only while a client is connected, saw nothing.  This recorder runs for
as long as the monitor does:

* The loop beats: a callback on the loop's own timer every half threshold
  (``Backend.heartbeat``) stores the time and, when it ran later than due by
  the threshold or more, notes a stall of that length.  Lateness is a lower
  bound (the loop may have got stuck up to one beat before the late one was
  due): every stall noted is real, and every stall of 1.5 thresholds or more
  is noted.
* The recorder's thread looks every threshold whether the beat is overdue;
  while it is, it samples the loop thread's stack (``sys._current_frames``)
  every fifth of a threshold and, once, which task runs.  The beat cannot say
  what blocked it; the samples can.  A stall over before the thread looked
  is remembered without a stack.

The loop's lag over the last minutes (the web dashboard's chart, the
``aiomonitor_loop_lag_peak_seconds`` metric) comes from the same beats: each
beat keeps the worst lateness seen (one compare), and the thread, once a
second, moves that peak into a history of ``LAG_HISTORY`` seconds.

Cost contract, measured by ``python benchmarks/run.py --only recorder``: a
busy loop runs one due timer per beat in an iteration it makes anyway; an
idle loop wakes once per beat (20 a second by default) and the thread ten
times a second.  No cross-thread wake-ups while the loop is healthy.  What
that costs depends on the machine's wake-ups (README "Benchmarks").
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..backends import Backend, FrameInfo
from ._watcher import Watcher

#: The default: a loop stuck this long (seconds) is a stall worth remembering.
DEFAULT_THRESHOLD = 0.1
#: The default number of stalls remembered (the newest).
DEFAULT_MAX_STALLS = 50
#: Beats per threshold: lateness is measured to within half a threshold.
BEATS_PER_THRESHOLD = 2
#: Samples per threshold while the loop is stuck.
SAMPLES_PER_THRESHOLD = 5
#: The innermost frames kept of a sampled stack.
STACK_DEPTH = 30
#: Seconds of per-second lag peaks remembered (five minutes).
LAG_HISTORY = 300


@dataclass(frozen=True)
class Stall:
    """One remembered stall of the monitored loop."""

    #: When it started, by the wall clock (``time.time()``), and by monotonic time.
    started_at: float
    started_monotonic: float
    #: How long the loop did not run callbacks, in seconds.
    duration: float
    #: The task that was running, when one was (and its name then).
    task_id: int | None
    task_name: str | None
    #: The loop thread's stack seen most often during the stall, outermost
    #: first, ending at the blocking call (empty when too short to sample).
    stack: tuple[FrameInfo, ...]
    #: How many samples were taken, and how many of them showed ``stack``.
    samples: int
    matching_samples: int


class StallRecorder(Watcher):
    """Watches one monitored loop from a thread of its own; thread-safe reads."""

    def __init__(
        self,
        backend: Backend,
        threshold: float = DEFAULT_THRESHOLD,
        max_stalls: int = DEFAULT_MAX_STALLS,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"stall_threshold must be more than 0 seconds, not {threshold!r}")
        if max_stalls < 1:
            raise ValueError(f"max_stalls must be 1 or more, not {max_stalls!r}")
        super().__init__("aiomonitor-stalls")
        self._backend = backend
        self.threshold = threshold
        self.beat_interval = threshold / BEATS_PER_THRESHOLD
        self._stalls: collections.deque[Stall] = collections.deque(maxlen=max_stalls)
        self._count = 0
        self._lock = threading.Lock()
        self._stop_beating: Callable[[], None] | None = None
        #: Written by the loop's beat, read by the thread (a float and a
        #: deque append: atomic under the GIL).
        self._last_beat: float | None = None
        self._beats = 0
        self._late_beats: collections.deque[tuple[float, float]] = collections.deque(maxlen=max_stalls)
        #: The worst lateness of a beat since the thread last looked (the
        #: loop raises it, the thread takes and resets it: a beat landing
        #: between the two is lost, a few microseconds' window once a second).
        self._lag_peak = 0.0
        self._lag_history: collections.deque[tuple[float, float]] = collections.deque(maxlen=LAG_HISTORY)
        #: (when, lateness) of the last minute's beats (a deque append per beat),
        #: for the stall a command caused (``worst_lateness_since``).
        self._recent_beats: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=int(60 * BEATS_PER_THRESHOLD / threshold) + 1
        )
        self._next_lag_second = 0.0
        #: Called in the recorder's thread with each second's lag peak (``on_lag_second``).
        self._lag_listeners: list[Callable[[float], None]] = []
        self.started_at: float | None = None

    # -- lifecycle (the Monitor's) ------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.started_at = time.monotonic()
        self._stop_beating = self._backend.heartbeat(self.beat_interval, self._beat)
        super().start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._stop_beating is not None:
            self._stop_beating()
        super().stop(timeout)

    # -- what commands read -------------------------------------------------------

    def stalls(self) -> tuple[Stall, ...]:
        """The remembered stalls, oldest first."""
        with self._lock:
            return tuple(self._stalls)

    @property
    def count(self) -> int:
        """How many stalls were seen since the start (more than are remembered)."""
        return self._count

    def lag_history(self) -> tuple[tuple[float, float], ...]:
        """(wall-clock second, worst beat lateness in it), oldest first, for the
        last ``LAG_HISTORY`` seconds the recorder ran."""
        with self._lock:
            return tuple(self._lag_history)

    def heartbeat_age(self) -> float | None:
        """How overdue the loop's next beat is now (0.0 while it beats on
        time; None before its first beat): how long a stuck loop has been stuck."""
        last = self._last_beat
        if last is None:
            return None
        return max(0.0, time.monotonic() - last - self.beat_interval)

    def worst_lateness_since(self, start: float) -> float:
        """The loop's worst lateness since *start* (``time.monotonic()``), each
        late beat counted only for its part after *start*: what a command that
        began then may have cost it (a bound from above: the app may have been
        stuck on its own meanwhile)."""
        now = time.monotonic()
        beats = list(self._recent_beats)
        worst = max((min(lateness, at - start) for at, lateness in beats if at > start), default=0.0)
        overdue = self.heartbeat_age()
        if overdue:
            worst = max(worst, min(overdue, now - start))
        return max(worst, 0.0)

    def memory(self) -> int:
        """Bytes it holds: the stalls (with their stacks) and the lag of the last minutes."""
        import sys

        with self._lock:
            stalls = list(self._stalls)
            history = sys.getsizeof(self._lag_history) + 2 * 24 * len(self._lag_history) + 56 * len(self._lag_history)
        frames = sum(sys.getsizeof(stall.stack) for stall in stalls)
        return history + sum(sys.getsizeof(stall) for stall in stalls) + frames

    @property
    def beats(self) -> int:
        """How many times the loop has beaten (0 until it runs)."""
        return self._beats

    def on_lag_second(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call *listener(peak)* once a second, in the recorder's thread, with
        the second's worst lateness; returns what stops it.  The listener must
        be quick and must not block (an exporter's histogram record is)."""
        with self._lock:
            self._lag_listeners.append(listener)

        def stop() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._lag_listeners.remove(listener)

        return stop

    # -- the loop's side ----------------------------------------------------------

    def _beat(self) -> None:
        """In the monitored loop, every beat interval: one clock read, one store."""
        now = time.monotonic()
        last = self._last_beat
        self._last_beat = now
        self._beats += 1
        if last is not None:
            lateness = now - last - self.beat_interval
            self._recent_beats.append((now, lateness))
            if lateness > self._lag_peak:
                self._lag_peak = lateness
            if lateness >= self.threshold:
                self._late_beats.append((last + self.beat_interval, lateness))

    # -- the thread ------------------------------------------------------------------

    def _watch(self) -> None:
        samples: collections.Counter[tuple[FrameInfo, ...]] = collections.Counter()
        task: tuple[int, str] | None = None
        stuck_since: float | None = None  # the overdue beat's due time, while it is overdue
        pause = self.threshold
        while not self._stop.wait(pause):
            self._keep_lag_peak()
            while self._late_beats:
                due, lateness = self._late_beats.popleft()
                sampled = stuck_since is not None and abs(stuck_since - due) < self.beat_interval
                self._remember(due, lateness, task if sampled else None, samples if sampled else None)
                if sampled:
                    samples, task, stuck_since = collections.Counter(), None, None
            last = self._last_beat
            overdue = last is not None and time.monotonic() - last - self.beat_interval >= self.threshold / 2
            if not overdue:
                # The samples of a stall that just ended stay until its late
                # beat is drained (the loop may beat between the two looks).
                pause = self.threshold
                continue
            assert last is not None
            if stuck_since != last + self.beat_interval:  # a new stall: who runs, once
                samples, stuck_since = collections.Counter(), last + self.beat_interval
                task = self._running_task()
            stack = self._sample_stack()
            if stack:
                samples[stack] += 1
            pause = self.threshold / SAMPLES_PER_THRESHOLD

    def _keep_lag_peak(self) -> None:
        """Once a second: the past second's worst lateness into the history.

        A loop stuck right now has not beaten late yet; its overdue time
        counts as lateness so far, so the chart shows a stall as it happens.
        """
        now = time.monotonic()
        if now < self._next_lag_second:
            return
        self._next_lag_second = now + 1.0
        peak, self._lag_peak = self._lag_peak, 0.0
        overdue = self.heartbeat_age()
        if overdue is not None:
            peak = max(peak, overdue)
        peak = max(peak, 0.0)
        with self._lock:
            self._lag_history.append((time.time(), peak))
            listeners = tuple(self._lag_listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):  # another library's fault must not end the recorder
                listener(peak)

    def _remember(
        self,
        due: float,
        lateness: float,
        task: tuple[int, str] | None,
        samples: collections.Counter[tuple[FrameInfo, ...]] | None,
    ) -> None:
        stack, matching = samples.most_common(1)[0] if samples else ((), 0)
        stall = Stall(
            started_at=time.time() - (time.monotonic() - due),
            started_monotonic=due,
            duration=lateness,
            task_id=None if task is None else task[0],
            task_name=None if task is None else task[1],
            stack=stack,
            samples=0 if samples is None else sum(samples.values()),
            matching_samples=matching,
        )
        with self._lock:
            self._stalls.append(stall)
            self._count += 1

    def _running_task(self) -> tuple[int, str] | None:
        with contextlib.suppress(Exception):  # a read from outside: never let it kill the thread
            return self._backend.running_task()
        return None

    def _sample_stack(self) -> tuple[FrameInfo, ...]:
        ident = self._backend.loop_thread_id()
        frame = sys._current_frames().get(ident) if ident is not None else None
        frames: list[FrameInfo] = []
        while frame is not None and len(frames) < STACK_DEPTH:
            frames.append(FrameInfo.from_frame(frame))
            frame = frame.f_back
        frames.reverse()
        return tuple(frames)
