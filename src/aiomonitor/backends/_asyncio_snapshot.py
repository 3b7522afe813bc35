"""Snapshots of many asyncio tasks, a chunk at a time, in C-level passes.

The per-task loop (``AsyncioBackend.snapshot_one``'s path) made ten Python
calls a task; at 100k tasks that was most of ``ps``.  Here each field is one
``map`` of a builtin over a chunk of tasks (``id``, ``getattr``,
``methodcaller``, ``itemgetter``), the chains go through ``_chains``, and
the fields are handed over as columns (``_columns``): Python runs only for
what is rare (a done, cancelling or running task; a task made by the app's
own factory; trace_timing's stats).  A test compares every field with the
per-task path.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from .._gil._passes import GilTurns
from . import _columns
from ._asyncio_tracer import traced_record
from ._chains import describe_chains
from ._columns import TaskColumns
from ._records import FrameInfo
from ._timing import TimedCoroutine, stats_of
from ._tracing import RawRecord, creator_ids, trace_columns

_repeat = itertools.repeat
_get_name = operator.methodcaller("get_name")
_done = operator.methodcaller("done")
_cancelling = operator.methodcaller("cancelling")
_HAS_CANCELLING = hasattr(asyncio.Task, "cancelling")  # Python 3.11+


def column_chunks(
    tasks: Iterable[asyncio.Task[Any]],
    current: asyncio.Task[Any] | None,
    foreign: Mapping[asyncio.Task[Any], RawRecord] | None,
    state_of: Callable[[asyncio.Task[Any], asyncio.Task[Any] | None], str],
) -> Iterator[TaskColumns]:
    """The tasks' snapshots in chunks of columns, in order, handing the GIL
    over between chunks.

    *foreign* holds the records of tasks made by the app's own factory;
    *state_of* is the per-task rule, used for chunks with a task that is
    not simply pending.
    """
    turns = GilTurns()
    iterator = iter(tasks)
    while chunk := list(itertools.islice(iterator, _columns.COLUMN_CHUNK)):
        yield _chunk(chunk, current, foreign, state_of)
        turns.offer()


def _chunk(
    tasks: list[asyncio.Task[Any]],
    current: asyncio.Task[Any] | None,
    foreign: Mapping[asyncio.Task[Any], RawRecord] | None,
    state_of: Callable[[asyncio.Task[Any], asyncio.Task[Any] | None], str],
) -> TaskColumns:
    count = len(tasks)
    coros = list(map(getattr, tasks, _repeat("_coro"), _repeat(None)))  # see _coro_of
    timed = TimedCoroutine in set(map(type, coros))
    inner = [coro.coro if type(coro) is TimedCoroutine else coro for coro in coros] if timed else coros
    coro_names, locations = describe_chains(inner)
    if None in coro_names:  # no user code in the chain: the coroutine's own name (see _coro_name)
        qualnames = map(getattr, inner, _repeat("__qualname__"), _repeat(None))
        coro_names = [
            name if name is not None else (qualname or type(coro).__qualname__)
            for name, qualname, coro in zip(coro_names, qualnames, inner, strict=True)
        ]
    unusual = (
        any(map(_done, tasks))
        or (_HAS_CANCELLING and any(map(_cancelling, tasks)))
        or any(map(operator.is_, tasks, _repeat(current)))
    )
    states = [state_of(task, current) for task in tasks] if unusual else ["pending"] * count
    sites: list[FrameInfo | None] = list(map(getattr, tasks, _repeat("_aiomonitor_site"), _repeat(None)))
    if timed or (foreign and None in sites):  # timed, or made by the app's own task factory: a call a task
        records = [traced_record(task) for task in tasks]
        if foreign:
            records = [foreign.get(task) if rec is None else rec for rec, task in zip(records, tasks, strict=True)]
        trace = trace_columns(records, list(map(stats_of, coros)) if timed else None)
    elif sites.count(None) == count:  # not traced
        trace = [[None] * count for _ in range(6)]
    else:  # read from the tracer's slots (see TracedTask), its records not made
        created_ats = list(map(getattr, tasks, _repeat("_aiomonitor_created_at"), _repeat(None)))
        parents = list(map(getattr, tasks, _repeat("_aiomonitor_parent"), _repeat(None)))
        trace = [sites, created_ats, creator_ids(parents), *([None] * count for _ in range(3))]
    return TaskColumns(
        list(map(id, tasks)),
        list(map(_get_name, tasks)),
        states,
        cast("list[str]", coro_names),
        locations,
        [None] * count,
        *trace,
    )
