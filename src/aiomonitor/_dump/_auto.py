"""Bundles written with nobody connected: when the loop stays blocked, or deadlocks.

A thread of its own (``aiomonitor-dumps``), started with the monitor when it
has a ``dump_dir``:

* **Blocked.**  It reads the stall recorder's heartbeat (no cost to the
  loop) a few times a second; once the loop has been stuck for
  ``dump_after`` seconds, it writes one bundle, and no other until the loop
  has beaten again: one per incident, however long it lasts, and however
  soon the next one follows.
* **Deadlocked.**  Every ``DEADLOCK_EVERY`` seconds (more when the check is
  dear: it never takes more than ``DEADLOCK_SHARE`` of the time) it looks
  for a cycle of tasks waiting on each other, as ``doctor`` does; a cycle
  not seen before gets a bundle.

Both run outside the loop, like every query: the bundle of a blocked loop
shows it blocked.  Time is read from an injectable clock, and ``poll`` runs
one round, for tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .._gil._heavy import heavy_section
from .._query import _diagnosis
from .._query._cycles import cycles as find_cycles
from .._query._stalls import StallRecorder
from .._query._watcher import Watcher
from ..backends import Backend
from ._files import DumpDirectory

log = logging.getLogger("aiomonitor")

#: Seconds between two looks for a deadlock, at least.
DEADLOCK_EVERY = 30.0
#: The share of time the deadlock check may take (it waits longer when dearer).
DEADLOCK_SHARE = 0.01
#: How often the heartbeat is read, at most (seconds).
LOOK_EVERY = 0.25


class AutoDumper(Watcher):
    """Writes bundles into *directory* when the loop blocks or deadlocks."""

    def __init__(
        self,
        backend: Backend,
        recorder: StallRecorder,
        directory: DumpDirectory,
        bundle: Callable[[], Iterable[str]],
        dump_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not dump_after > 0:
            raise ValueError(f"dump_after must be more than 0 seconds, not {dump_after!r}")
        super().__init__("aiomonitor-dumps")
        self._backend = backend
        self._recorder = recorder
        self._directory = directory
        self._bundle = bundle
        self._dump_after = dump_after
        self._clock = clock
        #: The loop's beat count when the last block was dumped: the same count is the same block.
        self._beats_when_dumped = -1
        self._next_deadlock_check = clock() + DEADLOCK_EVERY
        #: The deadlocks already dumped, by their tasks (a cycle is dumped once).
        self._known_cycles: set[frozenset[int]] = set()
        #: Paths written, newest last (for ``dump`` to report and tests to read).
        self.written: list[Path] = []

    def _watch(self) -> None:
        while not self._stop.wait(min(LOOK_EVERY, self._dump_after / 4)):
            try:
                self.poll()
            except Exception:  # one bad round must not end the watch
                log.exception("aiomonitor: the automatic dump failed")

    def poll(self) -> Path | None:
        """One round: a bundle if the loop is blocked long enough or a new deadlock appeared."""
        age = self._recorder.heartbeat_age()
        # An incident ends when the loop beats again, however briefly: the
        # beat count says so even when a new block begins at once.
        if age is not None and age >= self._dump_after and self._recorder.beats != self._beats_when_dumped:
            self._beats_when_dumped = self._recorder.beats
            return self._write(f"loop blocked for {age:.1f} s")
        now = self._clock()
        if now >= self._next_deadlock_check:
            started = time.perf_counter()
            new = self._new_deadlock()
            cost = time.perf_counter() - started
            self._next_deadlock_check = now + max(DEADLOCK_EVERY, cost / DEADLOCK_SHARE)
            if new:
                return self._write("a deadlock")
        return None

    def _new_deadlock(self) -> bool:
        with heavy_section(), self._backend.one_look():
            graph = _diagnosis.wait_graph(self._backend.suspect_waits(), self._backend.await_edges())
            found = {frozenset(cycle) for cycle in find_cycles(graph)}
        new = found - self._known_cycles
        self._known_cycles = found  # a cycle that ends and comes back is a new incident
        return bool(new)

    def _write(self, reason: str) -> Path | None:
        with heavy_section():
            path = self._directory.write(self._bundle())
        if path is not None:
            log.warning("aiomonitor: %s; the tasks are in %s (aiomonitor open %s)", reason, path, path)
            self.written.append(path)
            del self.written[:-100]
        return path
