"""The flight recorder: how many tasks of each kind there were, over the last minutes.

Incidents are over by the time someone connects.  This keeps a census over
time from a thread of its own (``aiomonitor-trend``): every ``interval``
seconds, the live tasks counted per group of alike tasks (the same
coroutine waiting at the same line, as ``ps -g`` folds them) and per state,
for the last ``window`` seconds; and, for ``ps --stuck``, since when each
task has waited at the line it waits at now.

Memory, fixed by the settings and the number of live tasks:

* the samples: at most ``window / interval`` of them (180 by default), each
  with the ``TOP_GROUPS`` largest groups (the rest summed): ~10 KB each,
  ~2 MB in all;
* the group keys seen, at most ``MAX_KEYS`` (the rest count as "other");
* one dict entry per live task (its group and since when): ~100 bytes a
  task, 10 MB at 100,000 tasks (``benchmarks/run.py --only recorder``).

Cost: a sample reads the tasks as ``ps -g`` does, outside the loop, handing
the GIL over (a few ms of stall at 100,000 tasks, like ``ps``).  The wait
between samples grows so that sampling never takes more than ``SHARE`` of
the time: every 5 s at a few thousand tasks, every ~15 s at 100,000.

A task id CPython reuses for a new task at the same line inherits the old
one's "since": rare, and it can only make a task look stuck longer.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._gil._heavy import heavy_section
from .._gil._passes import yielding
from ..backends import Backend, FrameInfo
from ._watcher import Watcher

#: The default seconds between samples, and how far back they go.
DEFAULT_INTERVAL = 5.0
DEFAULT_WINDOW = 900.0
#: Groups kept per sample (the largest); the rest are summed as other.
TOP_GROUPS = 50
#: Group keys remembered at most; tasks of later ones count as other.
MAX_KEYS = 10_000
#: The share of time sampling may take.
SHARE = 0.02

#: The key index of tasks beyond ``MAX_KEYS``.
OTHER = -1


@dataclass(frozen=True)
class Sample:
    """The census at one moment."""

    at: float  # wall clock
    monotonic: float
    total: int
    by_state: dict[str, int]
    #: (group key index, count, how many of the group's tasks at the previous
    #: sample have left it since), the largest groups first.
    groups: tuple[tuple[int, int, int], ...]
    #: The tasks of the groups past ``TOP_GROUPS``.
    other: int


@dataclass(frozen=True)
class GroupTrend:
    """One group's counts over the window, for ``trend`` and ``doctor``."""

    coro: str
    location: FrameInfo | None
    #: (wall-clock time, count), oldest first, one per sample (0 where absent).
    counts: tuple[tuple[float, int], ...]
    #: Tasks that left the group (ended, or moved on) over the window.
    departures: int
    #: Since when the count has only grown (or only shrunk) up to now (wall clock).
    since: float

    @property
    def change(self) -> int:
        return self.counts[-1][1] - self.counts[0][1] if self.counts else 0


class TrendRecorder(Watcher):
    """Samples one monitored loop's tasks from a thread of its own; thread-safe reads."""

    def __init__(
        self,
        backend: Backend,
        interval: float = DEFAULT_INTERVAL,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not interval > 0 or not window >= interval:
            raise ValueError(f"trend_interval must be more than 0 and at most the window, not {interval!r}")
        super().__init__("aiomonitor-trend")
        self._backend = backend
        self.interval = interval
        self.window = window
        self._clock = clock
        self._wall_clock = wall_clock
        self._samples: collections.deque[Sample] = collections.deque(maxlen=max(1, int(window / interval)))
        self._keys: dict[tuple[str, FrameInfo | None], int] = {}
        self._key_list: list[tuple[str, FrameInfo | None]] = []
        #: task id -> (group key index, number of the first sample that saw it there)
        self._positions: dict[int, tuple[int, int]] = {}
        self._sample_times: dict[int, float] = {}  # sample number -> monotonic time (those still referred to)
        self._count = 0
        self._lock = threading.Lock()
        self.started_at: float | None = None
        #: The last sample's cost, in seconds (``cost``, the benchmarks).
        self.last_cost = 0.0

    # -- lifecycle (the Monitor's) ------------------------------------------------

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = self._clock()
        super().start()

    def _watch(self) -> None:
        pause = 0.0  # the first sample at once: an incident may be why the app was restarted
        while not self._stop.wait(pause):
            started = time.perf_counter()
            self.sample()
            self.last_cost = time.perf_counter() - started
            pause = max(self.interval, self.last_cost / SHARE)

    # -- sampling -------------------------------------------------------------------

    def sample(self) -> Sample:
        """Take one sample now (the thread's round; tests call it directly)."""
        with heavy_section(), self._backend.one_look():
            number, now, wall = self._count, self._clock(), self._wall_clock()
            old = self._positions
            positions: dict[int, tuple[int, int]] = {}
            counts: collections.Counter[int] = collections.Counter()
            stayed: collections.Counter[int] = collections.Counter()
            by_state: collections.Counter[str] = collections.Counter()
            for chunk in self._backend.snapshot_columns():
                rows = zip(chunk.id, chunk.state, chunk.coro, chunk.location, strict=True)
                for task_id, state, coro, location in yielding(rows, every=2048):
                    key = self._key((coro, location))
                    counts[key] += 1
                    by_state[state] += 1
                    before = old.get(task_id)
                    if before is not None and before[0] == key:
                        positions[task_id] = before
                        stayed[key] += 1
                    else:
                        positions[task_id] = (key, number)
        previous = collections.Counter(key for key, _ in old.values()) if old else collections.Counter()
        largest = counts.most_common(TOP_GROUPS)
        groups = tuple((key, count, max(0, previous[key] - stayed[key])) for key, count in largest)
        sample = Sample(
            wall, now, sum(counts.values()), dict(by_state), groups, sum(counts.values()) - sum(c for _, c in largest)
        )
        with self._lock:
            self._positions = positions
            self._samples.append(sample)
            self._sample_times[number] = now
            referred = {first for _, first in positions.values()}
            self._sample_times = {n: t for n, t in self._sample_times.items() if n in referred or n == number}
            self._count += 1
        return sample

    def _key(self, key: tuple[str, FrameInfo | None]) -> int:
        index = self._keys.get(key)
        if index is None:
            if len(self._key_list) >= MAX_KEYS:
                return OTHER
            index = self._keys[key] = len(self._key_list)
            self._key_list.append(key)
        return index

    # -- what commands read -----------------------------------------------------------

    def memory(self) -> int:
        """Bytes it holds: the per-task positions (the dict, its tuples and the
        ids), the samples and the group keys."""
        import sys

        with self._lock:
            positions = self._positions
            samples = list(self._samples)
            size = sys.getsizeof(positions)
            if positions:
                key, value = next(iter(positions.items()))
                size += len(positions) * (sys.getsizeof(key) + sys.getsizeof(value))
        size += sum(sys.getsizeof(sample.groups) + sys.getsizeof(sample.by_state) for sample in samples)
        return size + sys.getsizeof(self._keys) + sys.getsizeof(self._key_list)

    def samples(self) -> tuple[Sample, ...]:
        with self._lock:
            return tuple(self._samples)

    def key(self, index: int) -> tuple[str, FrameInfo | None]:
        """The (coroutine, location) of a group key index (``OTHER``: the rest)."""
        if index == OTHER:
            return ("(other)", None)
        return self._key_list[index]

    def stuck_since(self) -> dict[int, float]:
        """task id -> since when (monotonic) it has waited where it waits now, for
        the tasks seen at the last sample; the earliest is when watching began."""
        with self._lock:
            times = dict(self._sample_times)
            return {task_id: times[first] for task_id, (_, first) in self._positions.items() if first in times}

    def trends(self) -> list[GroupTrend]:
        """Each group seen in the window, with its counts per sample (largest change first)."""
        samples = self.samples()
        if not samples:
            return []
        keys = {key for sample in samples for key, _, _ in sample.groups}
        found = []
        for key in keys:
            counts = []
            departures = 0
            for sample in samples:
                entry = next(((c, d) for k, c, d in sample.groups if k == key), (0, 0))
                counts.append((sample.at, entry[0]))
                departures += entry[1]
            coro, location = self.key(key)
            found.append(GroupTrend(coro, location, tuple(counts), departures, _since(counts)))
        found.sort(key=lambda trend: (-abs(trend.change), -trend.counts[-1][1], trend.coro))
        return found

    def to_json(self) -> dict[str, Any]:
        """The recorder's samples, for a bundle and the web page."""
        samples = self.samples()
        keys = sorted({key for sample in samples for key, _, _ in sample.groups})
        return {
            "interval": self.interval,
            "window": self.window,
            "groups": [_group_json(key, *self.key(key)) for key in keys],
            "samples": [
                {
                    "at": s.at,
                    "total": s.total,
                    "by_state": s.by_state,
                    "groups": [list(entry) for entry in s.groups],
                    "other": s.other,
                }
                for s in samples
            ],
        }

    def iter_stuck(self, at_least: float, now: float | None = None) -> Iterator[tuple[int, float]]:
        """(task id, seconds stuck) of tasks at the same line for *at_least* seconds, longest first."""
        moment = self._clock() if now is None else now
        stuck = [(task_id, moment - since) for task_id, since in self.stuck_since().items()]
        yield from sorted((item for item in stuck if item[1] >= at_least), key=lambda item: (-item[1], item[0]))


def _group_json(key: int, coro: str, location: FrameInfo | None) -> dict[str, Any]:
    place = (
        None if location is None else {"file": location.filename, "line": location.lineno, "function": location.name}
    )
    return {"key": key, "coro": coro, "location": place}


def _since(counts: list[tuple[float, int]]) -> float:
    """When the latest run of only growing (or only shrinking) counts began."""
    index = len(counts) - 1
    if index <= 0:
        return counts[0][0]
    rising = counts[index][1] >= counts[index - 1][1]
    while index > 0:
        step = counts[index][1] - counts[index - 1][1]
        if step < 0 if rising else step > 0:
            break
        index -= 1
    return counts[index][0]
