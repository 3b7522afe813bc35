"""Counting trio tasks by coroutine for ``/metrics``, in C-level passes."""

from __future__ import annotations

import collections
import itertools
import operator

import trio

from .._gil._passes import COUNT_CHUNK, GilTurns
from ._trio_tracer import WRAPPER_CODE, user_coro


def _coro_qualname(task: trio.lowlevel.Task) -> str:
    """The name ``ps`` shows in its coroutine column when the task has no await chain."""
    return getattr(user_coro(task), "__qualname__", None) or task.name


_CORO_CODE = operator.attrgetter("coro.cr_code")
_CORO_RUNNING = operator.attrgetter("coro.cr_running")
_AWAITED_NAME = operator.attrgetter("coro.cr_await.__qualname__")  # a wrapped task's own coroutine
_CORO_NAME = operator.attrgetter("coro.__qualname__")


def count_coroutines(tasks: list[trio.lowlevel.Task]) -> tuple[int, dict[str, int]]:
    """How many tasks run now, and how many there are by coroutine (``_coro_qualname``).

    In C-level passes of ``COUNT_CHUNK`` (a Python call per task was 130 ms
    at 100k): the app's coroutine is our wrapper's ``cr_await`` in wrapped
    tasks and the task's ``coro`` in the rest.  A chunk where that fails (a
    wrapped task before its first step, an odd coroutine) is counted in Python.
    """
    turns = GilTurns()
    running = 0
    by_coro: collections.Counter[str] = collections.Counter()
    for start in range(0, len(tasks), COUNT_CHUNK):
        chunk = tasks[start : start + COUNT_CHUNK]
        try:
            wrapped = list(map(operator.is_, map(_CORO_CODE, chunk), itertools.repeat(WRAPPER_CODE)))
            runs = list(map(_CORO_RUNNING, chunk))
            # A running wrapper's cr_await is not to be read (see _chains._next_level): by name.
            idle_wrapped = list(map(operator.gt, wrapped, runs))
            counts = collections.Counter(map(_AWAITED_NAME, itertools.compress(chunk, idle_wrapped)))
            counts.update(map(_CORO_NAME, itertools.compress(chunk, map(operator.not_, wrapped))))
            counts.update(map(_coro_qualname, itertools.compress(chunk, map(operator.and_, wrapped, runs))))
            chunk_running = sum(runs)
        except AttributeError:
            counts = collections.Counter(map(_coro_qualname, chunk))
            chunk_running = sum(1 for task in chunk if getattr(task.coro, "cr_running", False))
        by_coro.update(counts)
        running += chunk_running
        turns.offer()  # as yielding() does
    return running, dict(by_coro)
