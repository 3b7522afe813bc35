"""What trio tasks are traced with: an Instrument that wraps each spawned
task in a cancel scope of its own (``cancel``), and, when tracing, records
where and by whom it was spawned and how it ended (see the trio backend's
notes on why a per-task scope is the one sound way to cancel one task).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import trio

from ._frames import await_chain
from ._records import FrameInfo
from ._tracing import (
    CHAIN_CUT,
    NO_RECORD,
    CreationSites,
    History,
    RawRecord,
    exception_summary,
    framework_files,
    keepable,
    shortened_chain,
)

#: trio's functions that call spawn_impl for the app: the app's frame is the next one up.
_START_SOON_CODE = trio.Nursery.start_soon.__code__
_START_CODE = trio.Nursery.start.__code__


def _current_task_reader() -> Callable[[], Any]:
    """The running trio task, or None outside one (trio's start-up tasks have
    no spawner).  Reads trio's run context directly where it is found (a
    third of the cost of calling ``trio.lowlevel.current_task``), else calls that."""
    context = getattr(getattr(trio, "_core", None), "_run", None)
    context = getattr(context, "GLOBAL_RUN_CONTEXT", None)
    if context is not None:
        return functools.partial(getattr, context, "task", None)

    def current_task() -> Any:
        try:
            return trio.lowlevel.current_task()
        except RuntimeError:
            return None

    return current_task


async def _run_task(coro: Any, tracer: TaskTracer, scope: trio.CancelScope | None) -> Any:
    """Run a task's coroutine inside a cancel scope that belongs to it alone
    (if *scope*), noting how it ends for the history."""
    task = trio.lowlevel.current_task()
    cancelled = False
    value: object = None
    if scope is not None:
        tracer.scopes[task] = scope
    try:
        with scope if scope is not None else contextlib.nullcontext():
            result = await coro
            value = keepable(result)
            return result
    except trio.Cancelled:
        cancelled = True
        raise
    except BaseException as exc:
        value = exception_summary(exc)
        raise
    finally:
        # After the with block: only then does the scope know cancelled_caught.
        cancelled = cancelled or (scope is not None and scope.cancelled_caught)
        tracer.ended(task, scope, cancelled, value)


#: Our wrapper's code: its frame and coroutine are not the app's.
WRAPPER_CODE = _run_task.__code__


class TaskTracer(trio.abc.Instrument):
    """Wraps every task spawned from now on in a cancel scope of its own and,
    when tracing, remembers where and by whom it was spawned and how it ended.

    Without per-task scopes only the history needs a wrapper (trio tells an
    Instrument that a task exited, not how); creation records alone need
    none, see :class:`UnwrappedTaskTracer`.
    """

    def __init__(self, trace: bool, history_size: int, cancellable: bool = True) -> None:
        self.scopes: dict[Any, trio.CancelScope] = {}
        self.waiters: dict[Any, Callable[[trio.CancelScope], None]] = {}
        self.trace = trace
        self.records: dict[Any, RawRecord] = {}
        self.history = History(history_size if trace else 0)
        self._cancellable = cancellable
        #: Tasks spawned since tracing began (one item: the cheapest counter a closure can bump).
        self.counts = [0]
        self._sites = CreationSites()
        self._arm()

    @property
    def created(self) -> int:
        """Tasks spawned since tracing began."""
        return self.counts[0]

    def carry_on(self, before: TaskTracer) -> None:
        """Share *before*'s records, scopes and history, and its count (tracing
        switched): tasks it wrapped report their ends to it, into the same ones."""
        self.records = before.records
        self.scopes = before.scopes
        self.waiters = before.waiters
        size = self.history.size if self.trace else before.history.size
        self.history = before.history
        self.history.resize(size)
        self.counts = before.counts
        self._sites = before._sites
        self._arm()

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        """Replaced per instance by ``_arm`` (trio finds the hook by this name)."""
        self._wrap(task)

    def _arm(self) -> None:
        """Install this tracer's ``task_spawned``: a closure over what it
        updates, since it runs in the spawner for every task (see benchmarks)."""
        if not self.trace:
            self.task_spawned = self._wrap  # type: ignore[method-assign]
            return
        wrap = None if type(self)._wrap is UnwrappedTaskTracer._wrap else self._wrap
        counts, records, sites, resolve = self.counts, self.records, self._sites.memo, self._sites.resolve
        get_record, getframe, monotonic = records.get, sys._getframe, time.monotonic
        current_task = _current_task_reader()
        skip = framework_files(trio)
        start_soon_code, start_code = _START_SOON_CODE, _START_CODE
        last_code: types.CodeType | None = None
        last_lasti = -1
        last_created = FrameInfo("", 0, "")  # unused until last_code is set

        def task_spawned(task: trio.lowlevel.Task) -> None:
            # In the spawner, before the task's first step.  Depths: 0 here,
            # 1 trio's Instruments.call, 2 spawn_impl, 3 start_soon or start,
            # 4 whoever called that (one frame object made, not one per level).
            nonlocal last_code, last_lasti, last_created
            counts[0] += 1
            try:
                frame = getframe(3)
                code = frame.f_code  # (compared by identity: hashing a code object hashes its content)
                if code is start_soon_code or code is start_code:
                    frame = getframe(4)
            except ValueError:  # a stack this shallow: trio's own start-up, walked from spawn_impl
                frame = getframe(2)
            code, lasti = frame.f_code, frame.f_lasti
            if code is last_code and lasti == last_lasti:  # tasks spawned in a loop
                created = last_created
            else:
                while code.co_filename in skip and frame.f_back is not None:
                    frame = frame.f_back
                    code = frame.f_code
                lasti = frame.f_lasti
                site = sites.get((id(code), lasti))
                if site is None:
                    created, memoised = resolve(frame)
                else:
                    created, memoised = site[1], True
                if memoised:
                    last_code, last_lasti, last_created = code, lasti, created
            parent = get_record(current_task())
            if parent is None:  # raw_record(), inlined
                records[task] = (id(task), created, None, monotonic(), 0)
            else:
                depth = parent[4] + 1
                if not depth % CHAIN_CUT:
                    parent = shortened_chain(parent)
                records[task] = (id(task), created, parent, monotonic(), depth)
            if wrap is not None:
                wrap(task)

        self.task_spawned = task_spawned  # type: ignore[method-assign]

    def _wrap(self, task: trio.lowlevel.Task) -> None:
        scope = trio.CancelScope() if self._cancellable else None
        task.coro = _run_task(task.coro, self, scope)  # type: ignore[assignment]

    def ended(self, task: trio.lowlevel.Task, scope: trio.CancelScope | None, cancelled: bool, value: Any) -> None:
        if scope is not None:
            self.scopes.pop(task, None)
            notify = self.waiters.pop(task, None)
            if notify is not None:
                notify(scope)
        record = self.records.pop(task, None)
        if self.trace:
            coro = task.coro.cr_await if task.coro.cr_code is WRAPPER_CODE else task.coro
            known = NO_RECORD if record is None else record
            self.history.add((*known[:4], task.name, coro, time.monotonic(), cancelled, value, None))
            self.history.added += 1


class UnwrappedTaskTracer(TaskTracer):
    """Creation records only (no per-task scopes, no history): tasks run as
    spawned, and a record is dropped when trio says its task exited."""

    def _wrap(self, task: trio.lowlevel.Task) -> None:
        pass

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.records.pop(task, None)


def user_coro(task: trio.lowlevel.Task) -> Any:
    coro = task.coro
    if getattr(coro, "cr_code", None) is WRAPPER_CODE:
        # None before the first step, and while it runs (its cr_await is not
        # to be read then: see _chains._next_level): reported by name.
        return _inner(coro)
    return coro


def user_coros(coros: list[Any]) -> list[Any]:
    """``user_coro`` of the tasks whose coroutines these are, in C-level passes
    (their chain is the task's frames without the wrapper's: see frames_of)."""
    codes = map(getattr, coros, itertools.repeat("cr_code"), itertools.repeat(None))
    wrapped = list(map(operator.is_, codes, itertools.repeat(WRAPPER_CODE)))
    if not any(wrapped):
        return coros
    return [_inner(coro) if inside else coro for coro, inside in zip(coros, wrapped, strict=True)]


def _inner(wrapper: Any) -> Any:
    """The app's coroutine inside our wrapper (None while the wrapper runs: see user_coro)."""
    return None if wrapper.cr_running else wrapper.cr_await


def frames_of(task: trio.lowlevel.Task) -> list[types.FrameType]:
    frames = await_chain(task.coro)
    if frames and frames[0].f_code is WRAPPER_CODE:  # our wrapper: not the app's
        del frames[0]
    return frames
