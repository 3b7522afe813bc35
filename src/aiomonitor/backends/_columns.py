"""Snapshots of a chunk of tasks as columns: a list per field.

``ps`` of 100k tasks reads five fields of each, a column at a time; made as
100k ``TaskSnapshot`` tuples and taken apart again, a fifth of the command
was building tuples (and each is a container the cyclic GC tracks).  A
backend that gathers fields a column at a time (both do) hands them over as
they are; tuples are made only for the readers that want them
(``snapshots``).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ._records import FrameInfo, TaskSnapshot, new_snapshot

#: Tasks per chunk: each C-level pass over a chunk holds the GIL (~0.1-0.3 ms).
COLUMN_CHUNK = 2048


class TaskColumns(NamedTuple):
    """TaskSnapshot's fields, in its order, for the tasks of one chunk.  Read-only."""

    id: list[int]
    name: list[str]
    state: list[str]
    coro: list[str]
    location: list[FrameInfo | None]
    parent_id: list[int | None]
    created: list[FrameInfo | None]
    created_at: list[float | None]
    creator_id: list[int | None]
    steps: list[int | None]
    busy: list[float | None]
    longest_step: list[float | None]

    @classmethod
    def of(cls, snapshots: Sequence[TaskSnapshot]) -> TaskColumns:
        columns: list[list[Any]] = [list(column) for column in zip(*snapshots, strict=True)]
        return cls(*columns) if snapshots else cls(*([] for _ in cls._fields))

    @property
    def size(self) -> int:
        """How many tasks."""
        return len(self.id)

    def snapshots(self) -> Iterator[TaskSnapshot]:
        """Each task's TaskSnapshot (built in C from a row of the columns)."""
        return map(new_snapshot, itertools.repeat(TaskSnapshot), zip(*self, strict=True))

    def kept(self, keep: Sequence[Any]) -> TaskColumns:
        """The tasks whose entry in *keep* is true."""
        columns: list[list[Any]] = [list(itertools.compress(column, keep)) for column in self]
        return TaskColumns(*columns)

    def without_name(self, name: str) -> TaskColumns:
        """The tasks not named *name* (the monitor's own: few, and in few chunks)."""
        if name not in self.name:
            return self
        return self.kept(list(map(operator.ne, self.name, itertools.repeat(name))))

    def first(self, count: int) -> TaskColumns:
        columns: list[list[Any]] = [column[:count] for column in self]
        return TaskColumns(*columns)


def columns_of(snapshots: Iterable[TaskSnapshot]) -> Iterator[TaskColumns]:
    """A stream of snapshots, in chunks of columns (for backends that make tuples)."""
    iterator = iter(snapshots)
    while chunk := list(itertools.islice(iterator, COLUMN_CHUNK)):
        yield TaskColumns.of(chunk)


def snapshots_of(chunks: Iterable[TaskColumns]) -> Iterator[TaskSnapshot]:
    """Chunks of columns, as a stream of TaskSnapshots."""
    return itertools.chain.from_iterable(map(TaskColumns.snapshots, chunks))
