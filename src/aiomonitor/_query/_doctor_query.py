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
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .._gil._passes import release_gently
from ..backends import MONITOR_TASK_NAME, Backend, FrameInfo, Wait
from . import _diagnosis
from ._cycles import cycles as find_cycles
from ._stalls import StallRecorder
from ._trend import TrendRecorder


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


def diagnose(
    backend: Backend,
    recorder: StallRecorder,
    memory: CancelMemory,
    trend: TrendRecorder | None = None,
    suspects: list[Wait] | None = None,
) -> Diagnosis:
    """Run every check over what the backend and the stall recorder know.

    Read-only and outside the loop, like every query: a blocked or
    deadlocked loop is diagnosed, not waited for.  One read of the tasks is
    not atomic (the loop runs on meanwhile): see :func:`confirmed`.
    """
    with backend.one_look():
        return _diagnose(backend, recorder, memory, trend, suspects)


def _diagnose(
    backend: Backend,
    recorder: StallRecorder,
    memory: CancelMemory,
    trend: TrendRecorder | None,
    suspects: list[Wait] | None,
) -> Diagnosis:
    now = time.monotonic()
    waits = backend.suspect_waits() if suspects is None else suspects
    edges = backend.await_edges()
    graph = _diagnosis.wait_graph(waits, edges)
    cycles = find_cycles(graph)
    cancelling = memory.since(backend.cancelling(), now)
    sites, steps = _trace_digest(backend, now) if backend.traced or backend.timed else ([], [])
    ended = backend.history() if backend.keeps_history else []
    stalls = recorder.stalls()
    # Names only of the tasks a finding may mention: a gather of 100k tasks
    # is 100k await edges, and none of them is news.
    involved = {task_id for cycle in cycles for task_id in cycle}
    involved |= {h.task_id for w in waits if w.task_id in involved for h in w.holders}
    involved |= {w.task_id for w in waits if w.orphaned}
    involved |= {task_id for task_id, _ in cancelling} | {task_id for task_id, _ in steps}
    names = backend.names_of(involved)
    findings = [
        *_diagnosis.check_deadlocks(cycles, graph, waits, names),
        *_diagnosis.check_orphaned_waits(waits, names),
        *_diagnosis.check_stalls(stalls, now, names),
        *_diagnosis.check_swallowed_cancels(cancelling, now, names),
        *_diagnosis.check_leaks(sites),
        *_diagnosis.check_unretrieved(ended),
        *_diagnosis.check_slow_steps(steps, recorder.threshold, names),
        *_diagnosis.check_stuck_groups(trend.trends() if trend is not None else []),
    ]
    # The monitor's own tasks (console statements) are not the app's problems.
    findings = [f for f in findings if not any(names.get(t) == MONITOR_TASK_NAME for t in f.task_ids)]
    release_gently(edges, waits)  # a gather of 100k tasks: 100k edges, not freed in one go
    return Diagnosis(
        backend.task_count() - len(backend.ids_named(MONITOR_TASK_NAME)), tuple(_diagnosis.ranked(findings))
    )


#: Checks whose findings are read again a moment later before they are
#: reported (see :func:`confirmed`), and how long that moment is.
CONFIRMED_CHECKS = frozenset({"deadlock", "await-cycle", "orphaned-wait"})
SETTLE_TIME = 0.05


class Compute(Protocol):
    """``_shared_work.compute`` bound to a monitor's work: runs a diagnosis."""

    def __call__(self, func: Callable[..., Diagnosis], *args: Any, share: Hashable | None = None) -> Diagnosis: ...


def diagnose_settled(
    compute: Compute,
    backend: Backend,
    recorder: StallRecorder,
    memory: CancelMemory,
    trend: TrendRecorder | None = None,
) -> Diagnosis:
    """A diagnosis, confirmed by a second look after ``SETTLE_TIME`` when a
    finding could be a moment's coincidence (the loop runs on in between)."""
    inputs = (backend, recorder, memory, trend)
    result = compute(diagnose, *inputs, share=("doctor",))
    if needs_confirming(result):
        time.sleep(SETTLE_TIME)  # outside the heavy section: the loop runs on
        again = compute(diagnose, *inputs, share=("doctor", "again", id(result)))
        result = confirmed(result, again)
    return result


def needs_confirming(result: Diagnosis) -> bool:
    return any(f.check in CONFIRMED_CHECKS for f in result.findings)


def confirmed(first: Diagnosis, second: Diagnosis) -> Diagnosis:
    """The second diagnosis, keeping a deadlock, await cycle or orphaned wait
    only if the first, a moment earlier, found it with the same tasks.

    The loop runs on while a diagnosis reads: a task seen waiting for a lock
    may hold it by the time its holder is sought.  What is really stuck is
    still there, identically, a moment later; a race is not.
    """
    earlier = {(f.check, f.task_ids) for f in first.findings if f.check in CONFIRMED_CHECKS}
    kept = [f for f in second.findings if f.check not in CONFIRMED_CHECKS or (f.check, f.task_ids) in earlier]
    return Diagnosis(second.tasks, tuple(kept))


def _trace_digest(backend: Backend, now: float) -> tuple[list[_diagnosis.SiteCount], list[tuple[int, float]]]:
    """Per creation site counts (tracing) and the slowest steps (timing), in
    one pass over the tasks' trace facts: nothing per task is kept."""
    per_site: dict[FrameInfo, list[float]] = {}  # site -> [live, recent, old, oldest created_at]
    slowest: list[tuple[float, int]] = []
    for task_id, site, created_at, longest_step in backend.trace_facts():
        if site is not None and created_at is not None:
            counts = per_site.get(site)
            if counts is None:
                counts = per_site[site] = [0, 0, 0, created_at]
            counts[0] += 1
            counts[1 if now - created_at <= _diagnosis.LEAK_WINDOW else 2] += 1
            counts[3] = min(counts[3], created_at)
        if longest_step is not None:
            heapq.heappush(slowest, (longest_step, task_id))
            if len(slowest) > _diagnosis.MAX_EVIDENCE:
                heapq.heappop(slowest)
    sites = [_diagnosis.SiteCount(site, int(c[0]), int(c[1]), int(c[2]), now - c[3]) for site, c in per_site.items()]
    return sites, [(task_id, seconds) for seconds, task_id in slowest]
