"""The query behind ``doctor``: gathers what the checks of ``_diagnosis``
read (waits, await edges, cancelling tasks, per-site counts, stalls, the
history) from the backend and the stall recorder, and runs them.

Part of the query layer (``_query``), kept apart for size: like every query
it reads from the calling worker thread and never enters the monitored loop.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from . import _diagnosis, _graph
from ._stalls import StallRecorder
from .backends import MONITOR_TASK_NAME, Backend, FrameInfo, Wait


class CancelMemory:
    """When ``doctor`` first saw each task cancelling, where the backend does
    not record when it was asked (one per monitor; thread-safe)."""

    #: At most this many tasks are remembered (the rest are new each time).
    LIMIT = 10_000

    def __init__(self) -> None:
        self._first_seen: dict[int, float] = {}
        self._lock = threading.Lock()

    def since(self, cancelling: Iterable[tuple[int, float | None]], now: float) -> list[tuple[int, float]]:
        """(task, since when) for each cancelling task: the recorded request
        time, else the first time it was seen cancelling."""
        with self._lock:
            seen: dict[int, float] = {}
            for task_id, requested_at in cancelling:
                seen[task_id] = requested_at if requested_at is not None else self._first_seen.get(task_id, now)
            if len(seen) <= self.LIMIT:
                self._first_seen = seen
            return list(seen.items())


@dataclass(frozen=True)
class Diagnosis:
    """What ``doctor`` found, ranked, over how many tasks."""

    tasks: int
    findings: tuple[_diagnosis.Finding, ...]


def diagnose(backend: Backend, recorder: StallRecorder, memory: CancelMemory) -> Diagnosis:
    """Run every check over what the backend and the stall recorder know.

    Read-only and outside the loop, like every query: a blocked or
    deadlocked loop is diagnosed, not waited for.
    """
    now = time.monotonic()
    waits, edges = _settled_waits(backend)
    cancelling = memory.since(backend.cancelling(), now)
    sites, steps = _task_digest(backend, now) if backend.traced or backend.timed else ([], [])
    ended = backend.history() if backend.keeps_history else []
    stalls = recorder.stalls()
    involved = {w.task_id for w in waits if w.holders or w.orphaned or w.awaited_task is not None}
    involved |= {h.task_id for w in waits for h in w.holders}
    involved |= {edge[0] for edge in edges} | {edge[1] for edge in edges}
    involved |= {task_id for task_id, _ in cancelling} | {task_id for task_id, _, _ in steps}
    names = backend.names_of(involved)
    findings = [
        *_diagnosis.check_deadlocks(waits, edges, names),
        *_diagnosis.check_orphaned_waits(waits, names),
        *_diagnosis.check_stalls(stalls, now, names),
        *_diagnosis.check_swallowed_cancels(cancelling, now, names),
        *_diagnosis.check_leaks(sites),
        *_diagnosis.check_unretrieved(ended),
        *_diagnosis.check_slow_steps(steps, recorder.threshold, names),
    ]
    own = set(backend.ids_named(MONITOR_TASK_NAME))
    findings = [f for f in findings if not own.intersection(f.task_ids)]
    return Diagnosis(backend.task_count() - len(own), tuple(_diagnosis.ranked(findings)))


#: How long ``doctor`` lets the loop run before it reads suspicious waits again.
SETTLE_TIME = 0.05


def _settled_waits(backend: Backend) -> tuple[list[Wait], list[tuple[int, int, str]]]:
    """The waits and await edges, with those that look stuck confirmed by a
    second read a moment later.

    One read is not atomic: the loop runs on while we read, so a task seen
    waiting for a lock may hold it by the time its holder is sought, which
    looks like a task waiting for itself.  A real deadlock, await cycle or
    orphaned wait is still there a moment later, identically; a race is not.
    """
    waits = backend.waits()
    edges = backend.await_edges()
    suspects = [w for w in waits if w.holders or w.orphaned]
    if not suspects and not _graph.cycles(_diagnosis.wait_graph([], edges)):
        return waits, edges
    time.sleep(SETTLE_TIME)
    again = {_wait_key(w) for w in backend.waits([w.task_id for w in suspects])}
    waits = [w for w in waits if not (w.holders or w.orphaned) or _wait_key(w) in again]
    edges = sorted(set(edges) & set(backend.await_edges()))
    return waits, edges


def _wait_key(wait: Wait) -> tuple[int, int, tuple[int, ...], bool]:
    return wait.task_id, wait.target, tuple(h.task_id for h in wait.holders), wait.orphaned


def _task_digest(backend: Backend, now: float) -> tuple[list[_diagnosis.SiteCount], list[tuple[int, float, str]]]:
    """Per creation site counts (tracing) and the slowest steps (timing), from
    one streamed snapshot: nothing per task is kept."""
    per_site: dict[FrameInfo, list[float]] = {}  # site -> [live, recent, old, oldest created_at]
    slowest: list[tuple[float, int, str]] = []
    for task in backend.snapshot():
        if task.created is not None and task.created_at is not None:
            counts = per_site.get(task.created)
            if counts is None:
                counts = per_site[task.created] = [0, 0, 0, task.created_at]
            counts[0] += 1
            age = now - task.created_at
            if age <= _diagnosis.LEAK_WINDOW:
                counts[1] += 1
            else:
                counts[2] += 1
            counts[3] = min(counts[3], task.created_at)
        if task.longest_step is not None and task.name != MONITOR_TASK_NAME:
            heapq.heappush(slowest, (task.longest_step, task.id, task.coro))
            if len(slowest) > _diagnosis.MAX_EVIDENCE:
                heapq.heappop(slowest)
    sites = [_diagnosis.SiteCount(site, int(c[0]), int(c[1]), int(c[2]), now - c[3]) for site, c in per_site.items()]
    return sites, [(task_id, seconds, coro) for seconds, task_id, coro in slowest]
