"""The await graph of asyncio tasks: who waits for which task, and how.

A task suspended on another task awaits it; on a gather's future, waits for
its children; in ``TaskGroup.__aexit__``, for the group's members.  A task
suspended on a plain future may be woken by another task's done callback
(``asyncio.wait``, ``wait_for``, ``shield``, ``as_completed``, the app's
own callbacks): found by what each callback holds.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import operator
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from .._gil._passes import pieces, release_gently, yielding
from ._chains import ChainLevels, awaited_by
from ._frames import await_chain

_TASK_GROUP_EXIT = getattr(getattr(asyncio, "TaskGroup", None), "__aexit__", None)


def _task_group_members(task: asyncio.Task[Any]) -> list[int]:
    """Tasks of the asyncio.TaskGroup whose ``async with`` *task* is leaving."""
    if _TASK_GROUP_EXIT is None:  # Python 3.10
        return []
    for frame in await_chain(getattr(task, "_coro", None)):
        if frame.f_code is _TASK_GROUP_EXIT.__code__:
            group = frame.f_locals.get("self")
            return [id(member) for member in list(getattr(group, "_tasks", ()))]
    return []


#: Done callbacks by which asyncio's helpers wake a waiting task, and the edge
#: each stands for; any other callback that wakes a waiter is a "callback".
_HELPER_CALLBACKS = {
    "_wait.<locals>._on_completion": "wait",
    "_release_waiter": "wait_for",
    "shield.<locals>._inner_done_callback": "shield",
    "as_completed.<locals>._on_completion": "as_completed",
    "_AsCompletedIterator._handle_completion": "as_completed",
}


#: A done callback, by id: what it holds that may wake a waiting task, and
#: the edge that stands for (see _held_by).
_Wakers = dict[int, tuple[list[Any], str]]


def _wakers_of(tasks: Iterable[asyncio.Task[Any]]) -> _Wakers:
    """Each distinct done callback of *tasks*, examined once: 100k tasks
    gathered together share one callback."""
    wakers: _Wakers = {}
    for task in yielding(tasks):
        for callback, _context in getattr(task, "_callbacks", None) or ():
            if id(callback) not in wakers:
                wakers[id(callback)] = _held_by(callback)
    return wakers


def _callback_edges(
    tasks: Iterable[asyncio.Task[Any]], wakers: _Wakers, waiters: dict[int, int]
) -> Iterator[tuple[int, int, str]]:
    """(waiter, task, how) for tasks whose done callback wakes a waiting task:
    ``asyncio.wait``, ``wait_for`` (3.11), ``shield``, or the app's own
    callback.  Found by what each callback holds (closure cells, a partial's
    arguments, a bound method's object) being the future the waiter awaits."""
    woken_by: dict[int, list[tuple[int, str]]] = {}
    for task in yielding(tasks):
        for callback, _context in getattr(task, "_callbacks", None) or ():
            woken = woken_by.get(id(callback))
            if woken is None:
                held, how = wakers[id(callback)]
                woken = woken_by[id(callback)] = [(waiters[id(obj)], how) for obj in held if id(obj) in waiters]
            for waiter, how in woken:
                if waiter != id(task):
                    yield (waiter, id(task), how)
                    break


def _held_by(callback: Any) -> tuple[list[Any], str]:
    """What *callback* holds that may wake a waiting task, in the order
    found, and the edge that stands for."""
    function = callback.func if isinstance(callback, functools.partial) else callback
    held: list[Any] = list(callback.args) if isinstance(callback, functools.partial) else []
    held.extend(cell.cell_contents for cell in getattr(function, "__closure__", None) or () if _filled(cell))
    held.append(getattr(function, "__self__", None))
    how = _HELPER_CALLBACKS.get(getattr(function, "__qualname__", ""), "callback")
    return [obj for obj in _wakeable(held) if obj is not None], how


def _wakeable(held: list[Any]) -> Iterator[Any]:
    """What a callback holding *held* may wake: the objects themselves, and the
    futures waiting on a queue among them (``as_completed`` hands finished
    tasks to its consumer through a queue; on 3.13 the queue is ``_done`` of
    the iterator whose method is the callback)."""
    for obj in held:
        yield obj
        for queue in (obj, getattr(obj, "_done", None)):
            getters = getattr(queue, "_getters", None) if isinstance(queue, asyncio.Queue) else None
            if getters:
                yield from list(getters)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


#: Tasks per chunk of C-level passes in await_edges_of.
_EDGE_CHUNK = 2048
_repeat = itertools.repeat


def await_edges_of(tasks: Collection[asyncio.Task[Any]]) -> list[tuple[int, int, str]]:
    """(waiter id, awaited task id, how) among *tasks* (``Backend.await_edges``).

    What each task waits on is read for a chunk at a time by C-level passes;
    Python runs only for the tasks with an edge to find (waiting on a task,
    a gather, a TaskGroup's exit): a pstree of 100k sleeping tasks spent a
    third of its time here, walking every chain in Python.
    """
    listed = list(tasks)
    # Callbacks first: only a task suspended on what some done callback holds
    # can be woken by one, and a map of every waiting task (100k sleeping
    # tasks) to find the few was ~a quarter of this function.
    with_callbacks: list[asyncio.Task[Any]] = []
    for chunk in pieces(listed, _EDGE_CHUNK):
        with_callbacks.extend(itertools.compress(chunk, map(getattr, chunk, _repeat("_callbacks"), _repeat(None))))
    wakers = _wakers_of(with_callbacks)
    wakeable = {id(obj) for held, _how in wakers.values() for obj in held}
    edges: list[tuple[int, int, str]] = []
    #: Futures that a callback may complete -> the task suspended on it.
    waiters: dict[int, int] = {}
    for chunk in pieces(listed, _EDGE_CHUNK):
        waited = list(map(getattr, chunk, _repeat("_fut_waiter"), _repeat(None)))  # what each is suspended on
        on_task = map(isinstance, waited, _repeat(asyncio.Task))
        on_gather = map(operator.is_not, map(getattr, waited, _repeat("_children"), _repeat(None)), _repeat(None))
        special = list(map(operator.or_, on_task, on_gather))
        plain = list(map(operator.and_, map(operator.is_not, waited, _repeat(None)), map(operator.not_, special)))
        leaving_group = _leaving_a_task_group(chunk, plain)
        for index in itertools.compress(range(len(chunk)), map(operator.or_, special, leaving_group)):
            task, future = chunk[index], waited[index]
            if isinstance(future, asyncio.Task):
                edges.append((id(task), id(future), "await"))
            elif (children := getattr(future, "_children", None)) is not None:  # gather
                edges.extend((id(task), id(child), "gather") for child in children if isinstance(child, asyncio.Task))
            else:
                members = _task_group_members(task)
                edges.extend((id(task), member, "taskgroup") for member in members)
                if not members:
                    waiters[id(future)] = id(task)
        if wakeable:
            waiting = map(operator.and_, plain, map(operator.not_, leaving_group))
            wakes = list(map(operator.and_, waiting, map(wakeable.__contains__, map(id, waited))))
            woken_ids = map(id, itertools.compress(chunk, wakes))
            waiters.update(zip(map(id, itertools.compress(waited, wakes)), woken_ids, strict=True))
    if waiters:
        edges.extend(_callback_edges(with_callbacks, wakers, waiters))
        release_gently(waiters)  # (100k tasks in wait_for, each with its own callback, make it big)
    return edges


def _leaving_a_task_group(tasks: list[asyncio.Task[Any]], plain: list[bool]) -> list[bool]:
    """For each task on a plain future: whether an ``asyncio.TaskGroup``'s
    ``__aexit__`` is in its await chain (its code's id in the chain's shape)."""
    if _TASK_GROUP_EXIT is None or not any(plain):
        return [False] * len(tasks)
    # From what each task's own coroutine awaits: a task's coroutine is never
    # ``__aexit__`` itself, and a task parked on a future (asyncio.sleep)
    # has nothing below it, so the walk ends at once for most tasks.
    levels = ChainLevels(awaited_by(list(map(getattr, tasks, _repeat("_coro"), _repeat(None)))))
    exit_code = id(_TASK_GROUP_EXIT.__code__)
    in_exit = map(operator.contains, levels.shapes(), _repeat(exit_code))
    return list(map(operator.and_, plain, in_exit))
