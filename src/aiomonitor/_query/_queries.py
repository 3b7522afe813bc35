"""The query layer: what the monitor knows, as typed, immutable results.

Every face of the monitor (telnet text, ``-j`` JSON lines, and later the web
API, metrics and ``doctor``) asks here and renders the answer its own way.
Nothing here writes text for people, speaks telnet, JSON or HTTP, or enters
the monitored loop: functions read the backend (and the watchdog) from the
calling worker thread, as the backend's read-only methods allow.

Results that can hold every task stream (:class:`TaskSelection`): at 100k
tasks, a list of 100k records held at once triggers full collections of the
app's heap (see ``Backend.snapshot``).
"""

from __future__ import annotations

import itertools
import operator
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from .._gil._passes import release_gently
from ..backends import (
    MONITOR_TASK_NAME,
    Backend,
    Canceller,
    Census,
    EndedTask,
    FrameInfo,
    TaskRecord,
    TaskSnapshot,
    Wait,
)
from ._selection import TASK_SORT_KEYS as TASK_SORT_KEYS
from ._selection import TaskQuery as TaskQuery
from ._selection import TaskSelection as TaskSelection
from ._selection import select_stuck as select_stuck
from ._selection import select_tasks as select_tasks
from ._selection import task_matches as task_matches
from ._stalls import Stall, StallRecorder
from ._watchdog import LoopWatchdog

#: Report the loop as blocked once a ping has gone unanswered this long.
BLOCKED_AFTER = 0.2


class HistoryOff(Exception):
    """The ended-task history is not kept (``max_termination_history`` is 0)."""


# -- live tasks ------------------------------------------------------------------


@dataclass(frozen=True)
class TaskDetail:
    """One live task: its await stack, who is cancelling it, how it was made."""

    task_id: int
    stack: tuple[FrameInfo, ...]
    canceller: Canceller | None
    record: TaskRecord | None
    #: Names of the tasks in the creation chain, where still known.
    chain_names: Mapping[int, str]
    #: What it waits for, and who holds that (None: nothing we can name).
    wait: Wait | None = None
    #: Names of the tasks the wait mentions (holders, the awaited task).
    wait_names: Mapping[int, str] = field(default_factory=dict)


def task_with_detail(backend: Backend, task_id: int) -> tuple[TaskSnapshot, TaskDetail]:
    """One live task's row (as ``ps`` has it) and its detail, from one look;
    raises ``UnknownTask``."""
    with backend.one_look():
        return backend.snapshot_one(task_id), _task_detail(backend, task_id)


def trace_totals(backend: Backend) -> tuple[int, int | None] | None:
    """Tasks created since tracing began and tasks seen ending (see ``Backend.trace_totals``)."""
    return backend.trace_totals()


def census(backend: Backend) -> Census:
    """Live tasks counted by state and coroutine, without a snapshot (metrics)."""
    return backend.census()


def task_detail(backend: Backend, task_id: int) -> TaskDetail:
    """Raises ``UnknownTask`` if no live task has this id."""
    with backend.one_look():
        return _task_detail(backend, task_id)


def _task_detail(backend: Backend, task_id: int) -> TaskDetail:
    stack = tuple(backend.stack(task_id))
    record = backend.record(task_id)
    wait = task_wait(backend, task_id)
    wait_names: Mapping[int, str] = {}
    if wait is not None:
        others = [h.task_id for h in wait.holders] + ([wait.awaited_task] if wait.awaited_task is not None else [])
        wait_names = backend.names_of([task_id, *others]) if others else {}
    return TaskDetail(
        task_id, stack, backend.canceller(task_id), record, chain_names(backend, record), wait, wait_names
    )


def chain_names(backend: Backend, record: TaskRecord | None) -> Mapping[int, str]:
    """Names of a creation chain's tasks: live ones from the loop, ended ones
    from the history (the latest entry of that id), others unknown."""
    if record is None:
        return {}
    ids = [link.task_id for link in record.chain()]
    names = backend.names_of(ids)
    if backend.keeps_history and len(names) < len(set(ids)):
        for ended in backend.history():  # oldest first: the latest ending wins
            if ended.task_id in ids and ended.task_id not in names:
                names.setdefault(ended.task_id, ended.name)
    return names


@dataclass(frozen=True)
class AwaitTree:
    """Who waits for whom: the tasks, the await edges, and (with tracing) creators."""

    #: task id -> its name, and its coroutine's name (in the snapshot's order).
    names: Mapping[int, str]
    coros: Mapping[int, str]
    #: (waiter id, awaited id, how): "await", "gather", "taskgroup", "nursery".
    edges: tuple[tuple[int, int, str], ...]
    #: task id -> id of the task that created it (tracing only).
    creators: Mapping[int, int]
    #: task id -> where it waits (for folding alike tasks).
    locations: Mapping[int, FrameInfo | None] = field(default_factory=dict)

    def release(self) -> None:
        """Free the mappings a piece at a time (see ``release_gently``); empty after."""
        for mapping in (self.names, self.coros, self.creators, self.locations):
            if isinstance(mapping, dict):
                release_gently(mapping)


def await_tree(backend: Backend, include_own: bool = False) -> AwaitTree:
    # From the snapshot's columns by C-level passes (no Python, no tuple per
    # task), and one listing of the tasks for the snapshot and the edges.
    names: dict[int, str] = {}
    coros: dict[int, str] = {}
    creators: dict[int, int] = {}
    locations: dict[int, FrameInfo | None] = {}
    with backend.one_look():
        for chunk in backend.snapshot_columns():
            if not include_own:
                chunk = chunk.without_name(MONITOR_TASK_NAME)
            names.update(zip(chunk.id, chunk.name, strict=True))
            coros.update(zip(chunk.id, chunk.coro, strict=True))
            locations.update(zip(chunk.id, chunk.location, strict=True))
            created = map(operator.is_not, chunk.creator_id, itertools.repeat(None))
            pairs = cast("Iterable[tuple[int, int]]", zip(chunk.id, chunk.creator_id, strict=True))
            creators.update(itertools.compress(pairs, created))
        edges = tuple(backend.await_edges())
    return AwaitTree(names, coros, edges, creators, locations)


# -- ended tasks -------------------------------------------------------------------


def ended_tasks(backend: Backend, filters: Sequence[str] = (), include_own: bool = False) -> tuple[EndedTask, ...]:
    """Remembered ended tasks matching *filters*, oldest first; raises HistoryOff."""
    if not backend.keeps_history:
        raise HistoryOff
    return tuple(
        e
        for e in backend.history()
        if (include_own or e.name != MONITOR_TASK_NAME)
        and all(f in f"{e.id} {e.name} {e.coro} {e.outcome}".lower() for f in filters)
    )


def parse_task_id(key: str) -> int | None:
    """*key* as a task id (decimal or 0x hex), or None if it is a name."""
    try:
        return int(key, 0)
    except ValueError:
        return None


def live_task_ids(backend: Backend, key: str) -> tuple[int, ...]:
    """The live tasks *key* names: an id (not checked here), or every task with that name."""
    task_id = parse_task_id(key)
    if task_id is not None:
        return (task_id,)
    return tuple(backend.ids_named(key))


def find_ended(backend: Backend, key: str) -> tuple[EndedTask, ...]:
    """Remembered endings *key* names, newest first: an entry number (unique),
    else a task's original id() or name (which may match several); raises HistoryOff."""
    if not backend.keeps_history:
        raise HistoryOff
    history = backend.history()
    number = parse_task_id(key)
    if number is not None:
        exact = tuple(e for e in history if e.id == number)
        return exact or tuple(e for e in reversed(history) if e.task_id == number)
    return tuple(e for e in reversed(history) if e.name == key)


# -- the loop's health -------------------------------------------------------------


@dataclass(frozen=True)
class BlockedLoop:
    """The monitored loop is not answering: for how long, and what it runs."""

    blocked_for: float
    #: The task running now, or None when the loop's thread is outside any task.
    task_id: int | None
    #: That task's stack (or the thread's), most recent call last.
    stack: tuple[FrameInfo, ...]


def blocked_loop(backend: Backend, watchdog: LoopWatchdog) -> BlockedLoop | None:
    """None if the loop answers a ping within a moment; blocks up to that moment."""
    blocked_for = watchdog.probe()
    if blocked_for < BLOCKED_AFTER:
        return None
    current = backend.current_task_id()
    stack = backend.stack(current) if current is not None else backend.loop_thread_stack()
    return BlockedLoop(blocked_for, current, tuple(stack))


@dataclass(frozen=True)
class MonitorStatus:
    """The web page's header line: what is monitored, and whether its loop answers."""

    framework: str
    traced: bool
    timed: bool
    keeps_history: bool
    blocked: BlockedLoop | None
    #: The blocking task's name, when a task blocks.
    blocked_task_name: str | None


def monitor_status(backend: Backend, watchdog: LoopWatchdog) -> MonitorStatus:
    """Blocks up to a moment, as :func:`blocked_loop` does."""
    blocked = blocked_loop(backend, watchdog)
    name = None
    if blocked is not None and blocked.task_id is not None:
        name = backend.names_of([blocked.task_id]).get(blocked.task_id)
    # No task count: listing 100k tasks costs 45-80 ms of the GIL, too much
    # for a page that asks every 2 s (the task table has the count).
    return MonitorStatus(backend.framework, backend.traced, backend.timed, backend.keeps_history, blocked, name)


def worst_lag(watchdog: LoopWatchdog) -> float:
    """The longest scheduling delay seen while clients were connected (last minute)."""
    return watchdog.worst_lag()


def recent_stalls(recorder: StallRecorder) -> tuple[Stall, ...]:
    """The stalls remembered since the monitor started, oldest first."""
    return recorder.stalls()


# -- diagnosis ---------------------------------------------------------------------


def task_wait(backend: Backend, task_id: int) -> Wait | None:
    """What one live task waits for (None if it waits for nothing we can name)."""
    return next(iter(backend.waits([task_id])), None)


# -- who is connected ----------------------------------------------------------------


class ConnectedClient(Protocol):
    """What the query layer reads of a connection."""

    peer: str
    kind: str
    connected_at: float
    running: str | None


@dataclass(frozen=True)
class ClientInfo:
    peer: str
    kind: str
    connected_for: float
    running: str | None
    is_caller: bool


def connected_clients(clients: Iterable[ConnectedClient], caller: object = None) -> tuple[ClientInfo, ...]:
    """Clients in the order they came; *caller* (the asking client) is marked."""
    now = time.monotonic()
    return tuple(
        ClientInfo(c.peer, c.kind, now - c.connected_at, c.running, c is caller)
        for c in sorted(clients, key=lambda c: c.connected_at)
    )
