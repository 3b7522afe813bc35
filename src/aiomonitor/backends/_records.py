"""The records backends hand to the monitor: frozen, plain data.

Only these cross threads, never a live task or frame, so the monitor can
format them at leisure.  Nothing here imports a framework or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any, NamedTuple

# Snapshots are NamedTuples, not frozen dataclasses: as immutable, and a
# 100k-task snapshot builds 200k of them, where a frozen dataclass's
# object.__setattr__ per field cost a third of the whole ``ps``.


class FrameInfo(NamedTuple):
    """One frame of a stack: enough to print it, no live frame object."""

    filename: str
    lineno: int
    name: str

    @classmethod
    def from_frame(cls, frame: FrameType) -> FrameInfo:
        """Memoised by (code, instruction): reading ``f_lineno`` of a suspended
        frame rescans the code's line table (~3 us), and 100k tasks usually
        wait at a handful of places."""
        code = frame.f_code
        # Keyed by id(code): hashing a code object hashes its whole content.
        # The entry keeps the code alive, so the id cannot be reused.
        cached = FRAME_INFO_CACHE.get((id(code), frame.f_lasti))
        if cached is None:
            if len(FRAME_INFO_CACHE) >= FRAME_INFO_CACHE_SIZE:
                FRAME_INFO_CACHE.clear()
            cached = (code, cls(code.co_filename, frame.f_lineno, code.co_name))
            FRAME_INFO_CACHE[(id(code), frame.f_lasti)] = cached
        return cached[1]


# A memo of a pure function (the same code and instruction always map to the
# same line), so sharing it between monitors is harmless; bounded.
FRAME_INFO_CACHE: dict[tuple[int, int], tuple[CodeType, FrameInfo]] = {}
FRAME_INFO_CACHE_SIZE = 50_000


class TaskSnapshot(NamedTuple):
    """What one task looked like at the moment of the snapshot."""

    id: int
    name: str
    state: str
    coro: str
    location: FrameInfo | None
    #: The task whose nursery holds this one (trio's tree); None on asyncio.
    parent_id: int | None = None
    #: With tracing: where and when the task was created, and by which task.
    created: FrameInfo | None = None
    created_at: float | None = None
    creator_id: int | None = None
    #: With trace_timing: steps run, total busy seconds, longest step in seconds.
    steps: int | None = None
    busy: float | None = None
    longest_step: float | None = None


class Census(NamedTuple):
    """How many live tasks there are by state and by coroutine name (metrics).

    Cheaper than a snapshot: no stack, no location, no record per task.
    """

    by_state: dict[str, int]
    by_coro: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


#: Builds a TaskSnapshot from a tuple of its fields, in C: ``TaskSnapshot(...)``
#: runs the NamedTuple's Python-level __new__, a third of a snapshot's cost.
new_snapshot: Callable[[type[TaskSnapshot], tuple[Any, ...]], TaskSnapshot] = tuple.__new__


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What happened when we asked a task to cancel."""

    task_id: int
    #: False when the task had already finished, so there was nothing to cancel.
    requested: bool
    #: True when the task finished within the grace period after the request.
    finished: bool
    #: A short description of how it ended (``"cancelled"``, an exception repr).
    ending: str = ""


class TaskRecord(NamedTuple):
    """Creation facts for one task; kept while it or a descendant lives."""

    task_id: int
    created: FrameInfo | None
    parent: TaskRecord | None
    created_at: float
    #: How many creators this task had, counting those no longer remembered.
    depth: int = 0

    def chain(self, limit: int = 20) -> list[TaskRecord]:
        """This record and up to *limit* - 1 of its nearest creators, oldest first.

        ``chain()[0].depth`` creators are left out.
        """
        chain: list[TaskRecord] = []
        record: TaskRecord | None = self
        while record is not None and len(chain) < limit:
            chain.append(record)
            record = record.parent
        return chain[::-1]


class Canceller(NamedTuple):
    """Who called cancel() on a task: a task (if any) and the calling stack."""

    task_id: int | None
    task_name: str | None
    stack: tuple[FrameInfo, ...]
    #: When (``time.monotonic()``), if recorded.
    requested_at: float | None = None


class EndedTask(NamedTuple):
    """A finished task, described for people."""

    #: This entry's number in the history: unique, never reused (CPython
    #: reuses a freed task's id() at once, so 60 short-lived tasks may share 2).
    id: int
    name: str
    coro: str
    record: TaskRecord | None
    ended_at: float
    outcome: str  # "returned 42", "raised ValueError('boom')", "cancelled"
    canceller: Canceller | None
    #: The task's id() while it lived (what ``ps`` showed), if known.
    task_id: int = 0

    @property
    def lifetime(self) -> float | None:
        return None if self.record is None else self.ended_at - self.record.created_at


class TracingMemory(NamedTuple):
    """What tracing holds now, measured from the objects (``cost``)."""

    #: Extra bytes per live traced task (its record, its slots or table entry,
    #: its timing proxy), the mean over the tasks looked at, and how many.
    per_task: float
    tasks: int
    #: Records of creators no longer alive, kept for their tasks' chains.
    chains: int
    #: The history of ended tasks.
    history: int


class Holder(NamedTuple):
    """A task that holds what another waits for, and how we know."""

    task_id: int
    #: ``"owner"`` when the primitive records its owner (trio's Lock); else
    #: the evidence, such as ``async with self.lock`` the task is inside.
    evidence: str
    #: Where the holder is (its line inside the ``async with``), if known.
    at: FrameInfo | None
    #: True when inferred from evidence rather than recorded ("probably").
    inferred: bool


class Wait(NamedTuple):
    """What one suspended task waits for."""

    task_id: int
    #: ``asyncio.Lock``, ``asyncio.Queue.get``, ``trio.Event``, ``task``,
    #: ``future``, ``asyncio.sleep``, ``asyncio.gather``...
    kind: str
    #: id() of the primitive, future or task waited on.
    target: int
    #: How the app's code names it where it waits (``self._lock``), if found.
    binding: str | None
    #: The app's line where the task waits.
    at: FrameInfo | None
    #: A few words on the primitive's state (``locked, 2 waiting``).
    detail: str
    #: Who holds it (locks, semaphores); empty when unknown or not held.
    holders: tuple[Holder, ...] = ()
    #: The task waited on, for kind ``task``.
    awaited_task: int | None = None
    #: True when nothing but the waiting task refers to what it waits on, so
    #: nothing can ever wake it (a future or event nobody else can reach).
    orphaned: bool = False
