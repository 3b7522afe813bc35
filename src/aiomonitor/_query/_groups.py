"""Groups of alike tasks: what ``ps -g``, ``/api/v1/tasks?group=1`` and
``pstree``'s folding show in one line each.  Pure query layer.

Tasks are alike when they run the same coroutine and wait at the same line:
a server's thousand in-flight requests, a pool's parked workers.  A group
keeps its count, its states, the oldest and newest creation time (with
tracing) and a few example ids in id order, which a person can hand to
``where``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..backends import FrameInfo, TaskColumns

#: Example ids a group keeps (the lowest, as its tasks arrive in id order).
EXAMPLES = 3

GroupKey = tuple[str, "FrameInfo | None"]


@dataclass
class TaskGroup:
    """Tasks with the same coroutine, waiting at the same place."""

    coro: str
    location: FrameInfo | None
    count: int = 0
    #: state -> how many, in the order first seen.
    states: dict[str, int] = field(default_factory=dict)
    #: The earliest and latest creation time (``time.monotonic()``; None untraced).
    oldest: float | None = None
    newest: float | None = None
    examples: list[int] = field(default_factory=list)
    #: The name the tasks share, or None when their names differ.
    name: str | None = None

    def add(self, task_id: int, name: str, state: str, created_at: float | None) -> None:
        if not self.count:
            self.name = name
        elif name != self.name:
            self.name = None
        self.count += 1
        self.states[state] = self.states.get(state, 0) + 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(task_id)
        if created_at is not None:
            if self.oldest is None or created_at < self.oldest:
                self.oldest = created_at
            if self.newest is None or created_at > self.newest:
                self.newest = created_at


def task_groups(chunks: Iterable[TaskColumns]) -> list[TaskGroup]:
    """The tasks of *chunks* in groups of alike ones, the largest first (then by first id).

    One Python step per task: ~0.3 s of ``ps``'s 100k rows are C passes, and
    this loop costs a tenth of that; being bytecode, it hands the GIL over at
    every switch interval.
    """
    groups: dict[GroupKey, TaskGroup] = {}
    for chunk in chunks:
        rows = zip(chunk.id, chunk.name, chunk.state, chunk.coro, chunk.location, chunk.created_at, strict=True)
        for task_id, name, state, coro, location, created_at in rows:
            group = groups.get((coro, location))
            if group is None:
                group = groups[coro, location] = TaskGroup(coro, location)
            group.add(task_id, name, state, created_at)
    return sorted(groups.values(), key=lambda group: (-group.count, group.examples[0]))
