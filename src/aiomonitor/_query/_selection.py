"""Which live tasks a ``ps`` (or the web's task list) shows: the query as
data, and its answer as a stream.  Part of the query layer (``_query``).

At 100k tasks a list of 100k records held at once triggers full collections
of the app's heap (see ``Backend.snapshot``): a selection streams chunks of
columns from the snapshot (see ``backends._columns``), and holds all of them
only when a sort needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._gil._passes import sorted_gently
from ..backends import MONITOR_TASK_NAME, Backend, TaskColumns, TaskSnapshot, columns_of, snapshots_of
from ._locations import format_location

#: Task orders (``ps -s``, ``top``): ages oldest first and busy times busiest
#: first; tasks without the figure (untraced, untimed) go last.
TASK_SORT_KEYS: Mapping[str, Callable[[TaskSnapshot], Any]] = {
    "id": lambda t: t.id,
    "name": lambda t: t.name,
    "state": lambda t: t.state,
    # Ties (tasks made before tracing began) by id, as the fast paths order them.
    "age": lambda t: (t.created_at if t.created_at is not None else float("inf"), t.id),
    "busy": lambda t: -(t.busy or 0.0),
}


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks, in which order, how many: ``ps``'s options as data."""

    #: Keep tasks whose id, name, state, coroutine or location contains every
    #: one of these (lower case).
    filters: tuple[str, ...] = ()
    sort: str | None = None
    limit: int | None = None
    #: Also the monitor's own tasks (console statements, async commands),
    #: which are left out of lists and counts by default.
    include_own: bool = False

    def __post_init__(self) -> None:
        if self.sort is not None and self.sort not in TASK_SORT_KEYS:
            raise ValueError(f"Sort by one of {', '.join(TASK_SORT_KEYS)}, not {self.sort!r}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"The limit must be 0 or more, not {self.limit}")


class TaskSelection:
    """The tasks a :class:`TaskQuery` selects, as a stream to consume once:
    of snapshots (iterate it), or of chunks of columns (``chunks``).

    ``total`` (every live task) and ``matched`` (those passing the filters)
    are the true counts, known once the stream has been consumed; ``shown``
    is how many were yielded.
    """

    def __init__(self, chunks: Iterable[TaskColumns], query: TaskQuery, total: int | None = None) -> None:
        """*chunks*: every live task, to select from; or, given their *total*,
        exactly the tasks selected (found without a full snapshot)."""
        self.query = query
        self._chunks = chunks
        self._known_total = total
        self._total = self._matched = self._shown = 0
        self._consumed = False

    def __iter__(self) -> Iterator[TaskSnapshot]:
        return snapshots_of(self.chunks())

    def chunks(self) -> Iterator[TaskColumns]:
        """The selected tasks, a chunk of columns at a time (what ``ps`` formats)."""
        if self._consumed:
            raise RuntimeError("a TaskSelection is consumed once")
        self._consumed = True
        if self._known_total is not None:
            for chunk in self._chunks:
                self._shown += chunk.size
                yield chunk
            self._total = self._matched = max(self._known_total, self._shown)  # (tasks may end meanwhile)
            return
        matching = self._matching()
        limit = self.query.limit
        if self.query.sort is not None:
            chosen = sorted_gently(snapshots_of(matching), TASK_SORT_KEYS[self.query.sort], limit)
            selected: Iterable[TaskColumns] = columns_of(chosen)
        elif limit is not None:
            selected = _first(matching, limit)
        else:
            selected = matching
        for chunk in selected:
            self._shown += chunk.size
            yield chunk
        for _ in matching:  # past the limit: counted, not kept, so the totals are true
            pass

    def _matching(self) -> Iterator[TaskColumns]:
        filters, include_own = self.query.filters, self.query.include_own
        for chunk in self._chunks:
            if not include_own:
                chunk = chunk.without_name(MONITOR_TASK_NAME)
            self._total += chunk.size
            if filters:
                chunk = chunk.kept([task_matches(task, filters) for task in chunk.snapshots()])
            self._matched += chunk.size
            if chunk.size:
                yield chunk

    @property
    def total(self) -> int:
        return self._total

    @property
    def matched(self) -> int:
        return self._matched

    @property
    def shown(self) -> int:
        return self._shown


def _first(chunks: Iterator[TaskColumns], count: int) -> Iterator[TaskColumns]:
    """The first *count* tasks of *chunks*, leaving the rest in the iterator."""
    if count <= 0:
        return
    for chunk in chunks:
        if chunk.size >= count:
            yield chunk.first(count)
            return
        count -= chunk.size
        yield chunk


def task_matches(task: TaskSnapshot, filters: Sequence[str]) -> bool:
    haystack = f"{task.id} {task.name} {task.state} {task.coro} {format_location(task.location)}".lower()
    return all(f in haystack for f in filters)


def select_tasks(backend: Backend, query: TaskQuery = TaskQuery()) -> TaskSelection:
    """Live tasks by *query*, streamed from one snapshot.

    The first few by id or age with no filter (``ps -n 20 -s age``) are
    found from one attribute per task and only they are snapshotted, where
    the backend can.
    """
    if query.limit is not None and not query.filters and query.sort in (None, "id", "age"):
        skip = None if query.include_own else MONITOR_TASK_NAME
        first = backend.snapshot_first(query.sort, query.limit, skip)
        if first is not None:
            chosen, total = first
            return TaskSelection([TaskColumns.of(chosen)], query, total=total)
    return TaskSelection(backend.snapshot_columns(), query)


def select_stuck(backend: Backend, stuck: dict[int, float], query: TaskQuery = TaskQuery()) -> TaskSelection:
    """The live tasks of *stuck* (id -> seconds at the same line), the longest
    stuck first, then by *query*'s filters and limit (it must not sort)."""
    found = [task for chunk in backend.snapshot_columns() for task in chunk.snapshots() if task.id in stuck]
    found.sort(key=lambda task: (-stuck[task.id], task.id))
    return TaskSelection([TaskColumns.of(found)], query)
