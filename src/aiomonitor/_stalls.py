"""Stalls of the monitored loop, remembered even when nobody was watching.

The person paged for a stall connects after it is over; the watchdog, which
pings only while a client is connected, saw nothing.  This recorder runs for
as long as the monitor does:

* Its thread posts a *beat* into the loop (``Backend.call_soon``) and, once
  the beat has run, the next one: one beat outstanding at a time, so a stuck
  loop never piles them up.  A beat is a callback that stores one float.
* While a beat is late by more than a quarter of the threshold, the thread
  samples the loop thread's stack (``sys._current_frames``) and, once per
  stall, which task is running.  Those samples are the evidence: the beat
  cannot say what blocked it, only for how long.
* When the late beat finally runs, how late it was is the stall's length
  (to within one check interval: the loop may have got stuck just before the
  beat was posted).  Beyond the threshold, a :class:`Stall` is kept, with
  the stack seen most often while it lasted; the last ``max_stalls`` are.

Cost contract: the monitored loop runs one tiny callback per check interval
(25 ms by default), plus the wake-up of an idle loop that posting it causes;
``benchmarks/`` measures the total against no monitor.  The thread sleeps
between checks and samples only during a stall, when the loop is not running
Python code of its own anyway, or is the thing being diagnosed.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .backends import Backend, FrameInfo, LoopUnresponsive

#: The default: a loop stuck this long (seconds) is a stall worth remembering.
DEFAULT_THRESHOLD = 0.1
#: The default number of stalls remembered (the newest).
DEFAULT_MAX_STALLS = 50
#: Checks per threshold: a stall of exactly the threshold is sampled ~3 times.
CHECKS_PER_THRESHOLD = 4
#: The check interval is never longer than this, whatever the threshold.
MAX_CHECK_INTERVAL = 0.25
#: The innermost frames kept of a sampled stack.
STACK_DEPTH = 30


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


class StallRecorder:
    """Watches one monitored loop from a thread of its own; thread-safe reads."""

    def __init__(
        self,
        backend: Backend,
        threshold: float = DEFAULT_THRESHOLD,
        max_stalls: int = DEFAULT_MAX_STALLS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"stall_threshold must be more than 0 seconds, not {threshold!r}")
        if max_stalls < 1:
            raise ValueError(f"max_stalls must be 1 or more, not {max_stalls!r}")
        self._backend = backend
        self.threshold = threshold
        self.check_interval = min(threshold / CHECKS_PER_THRESHOLD, MAX_CHECK_INTERVAL)
        self._clock = clock
        self._stalls: collections.deque[Stall] = collections.deque(maxlen=max_stalls)
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    # -- lifecycle (the Monitor's) ------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self.started_at = self._clock()
        self._thread = threading.Thread(target=self._run, name="aiomonitor-stalls", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def forget_thread_in_child(self) -> None:
        """After fork(), in the child: the thread did not come along."""
        self._stop.set()
        self._thread = None

    # -- what commands read -------------------------------------------------------

    def stalls(self) -> tuple[Stall, ...]:
        """The remembered stalls, oldest first."""
        with self._lock:
            return tuple(self._stalls)

    @property
    def count(self) -> int:
        """How many stalls were seen since the start (more than are remembered)."""
        return self._count

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        # A one-slot box per beat: the loop writes when it ran, the thread reads.
        answered: list[float] = []
        posted = self._post(answered)
        samples: collections.Counter[tuple[FrameInfo, ...]] = collections.Counter()
        task: tuple[int, str] | None = None
        sampled_task = False
        while not self._stop.wait(self.check_interval):
            now = self._clock()
            if posted is None:  # the loop could not take a beat (closed): keep trying
                posted = self._post(answered)
                continue
            if not answered:
                if now - posted >= self.check_interval:  # late: sample what the loop is doing
                    if not sampled_task:
                        task, sampled_task = self._running_task(), True
                    stack = self._sample_stack()
                    if stack:
                        samples[stack] += 1
                continue
            lateness = answered[0] - posted
            if lateness >= self.threshold:
                self._remember(posted, lateness, task, samples)
            samples = collections.Counter()
            task, sampled_task = None, False
            answered = []
            posted = self._post(answered)

    def _post(self, answered: list[float]) -> float | None:
        clock = self._clock

        def beat() -> None:  # runs in the monitored loop: one call, one append
            answered.append(clock())

        posted = clock()
        try:
            self._backend.call_soon(beat)
        except LoopUnresponsive:
            return None
        return posted

    def _remember(
        self,
        posted: float,
        lateness: float,
        task: tuple[int, str] | None,
        samples: collections.Counter[tuple[FrameInfo, ...]],
    ) -> None:
        stack, matching = samples.most_common(1)[0] if samples else ((), 0)
        started_wall = time.time() - (self._clock() - posted)
        stall = Stall(
            started_at=started_wall,
            started_monotonic=posted,
            duration=lateness,
            task_id=None if task is None else task[0],
            task_name=None if task is None else task[1],
            stack=stack,
            samples=sum(samples.values()),
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
