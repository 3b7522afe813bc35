"""Snapshots of many trio tasks, a chunk at a time, in C-level passes.

The trio twin of ``_asyncio_snapshot``: each field of a chunk of tasks is one
``map`` of a builtin, the chains go through ``_chains``, and Python runs only
for what is rare (a task whose coroutine is not named, timing stats mixed
with untimed tasks).  A test compares every field with the per-task rule
(``TrioBackend.snapshot_one``).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator, Mapping
from typing import cast

import trio

from .._gil._passes import GilTurns
from . import _columns
from ._chains import describe_chains
from ._columns import TaskColumns
from ._timing import StepStats
from ._tracing import RawRecord, trace_columns
from ._trio_tracer import user_coros

_repeat = itertools.repeat
_coro_of = operator.attrgetter("coro")
_name_of = operator.attrgetter("name")
_STATE = {True: "running", False: "waiting"}


def column_chunks(
    tasks: list[trio.lowlevel.Task],
    parents: list[int | None],
    records: Mapping[trio.lowlevel.Task, RawRecord],
    timings: Mapping[trio.lowlevel.Task, StepStats],
) -> Iterator[TaskColumns]:
    """The tasks' snapshots (each with its parent's id) in chunks of columns,
    in order, handing the GIL over between chunks.  *records* and *timings*:
    the tracer's and the step timer's, by task (empty when off)."""
    turns = GilTurns()
    for start in range(0, len(tasks), _columns.COLUMN_CHUNK):
        chunk = tasks[start : start + _columns.COLUMN_CHUNK]
        yield _chunk(chunk, parents[start : start + _columns.COLUMN_CHUNK], records, timings)
        turns.offer()


def _chunk(
    tasks: list[trio.lowlevel.Task],
    parents: list[int | None],
    records: Mapping[trio.lowlevel.Task, RawRecord],
    timings: Mapping[trio.lowlevel.Task, StepStats],
) -> TaskColumns:
    coros = list(map(_coro_of, tasks))
    users = user_coros(coros)  # the app's coroutines, below our wrapper where there is one
    coro_names, locations = describe_chains(users)
    names = list(map(_name_of, tasks))
    if None in coro_names:  # no user code in the chain: the coroutine's name, else the task's
        qualnames = map(getattr, users, _repeat("__qualname__"), _repeat(None))
        coro_names = [
            coro_name if coro_name is not None else (qualname or name)
            for coro_name, qualname, name in zip(coro_names, qualnames, names, strict=True)
        ]
    running = map(getattr, coros, _repeat("cr_running"), _repeat(False))
    stats = list(map(timings.get, tasks)) if timings else None
    return TaskColumns(
        list(map(id, tasks)),
        names,
        list(map(_STATE.__getitem__, running)),
        cast("list[str]", coro_names),
        locations,
        parents,
        *trace_columns(list(map(records.get, tasks)) if records else [None] * len(tasks), stats),
    )


def nursery_edges(tasks: list[trio.lowlevel.Task], parents: list[int | None]) -> list[tuple[int, int, str]]:
    """(parent id, task id, "nursery") for every task with a parent, in C-level passes."""
    turns = GilTurns()
    edges: list[tuple[int, int, str]] = []
    for start in range(0, len(tasks), _columns.COLUMN_CHUNK):
        chunk_parents = parents[start : start + _columns.COLUMN_CHUNK]
        ids = map(id, tasks[start : start + _columns.COLUMN_CHUNK])
        has_parent = map(operator.is_not, chunk_parents, _repeat(None))
        pairs = zip(chunk_parents, ids, _repeat("nursery"), strict=False)
        edges.extend(cast("Iterator[tuple[int, int, str]]", itertools.compress(pairs, has_parent)))
        turns.offer()
    return edges
