"""Task tracing for asyncio: a task factory that remembers, cheaply.

The factory makes a subclass of asyncio's *C* Task (not the pure-Python one)
with slots for what it remembers.  Per task it costs a frame lookup (usually
one frame at the depth where the previous task's site was found), three slot
writes and a timestamp; no object but the timestamp is allocated.  The raw
record tuple (``_tracing.RawRecord``) is made only when something needs it:
the task creating its first child (whose record links to it), a command
reading it, or the history.  The history, asked for separately, adds a
``__del__``.  Text is only made when a command asks.  What that costs on a
create/await micro-benchmark, in time and bytes per live task, is measured
by ``benchmarks/run.py --only tracing`` and quoted in the docs.

It chains to a factory the app installed before (``eager_task_factory``,
say).  That factory's tasks have no slots: their records live in a weak side
table and their endings arrive by done callback, dearer per task but paid
only by such apps, and without the canceller.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
import weakref
from collections.abc import Callable, Coroutine
from time import monotonic
from types import CodeType
from typing import Any, Literal

from ._records import Canceller, FrameInfo, TaskRecord
from ._timing import TimedCoroutine
from ._tracing import (
    NEVER_RETRIEVED,
    NO_RECORD,
    CreationSites,
    History,
    RawRecord,
    exception_summary,
    framework_files,
    keepable,
    raw_record,
    stack_above,
    to_record,
)

#: Where a canceller's stack stops: above a task's first frame is only the
#: loop running callbacks (asyncio.run, run_forever, Handle._run).
_LOOP_DRIVER_FILES = frozenset({asyncio.events.__file__, asyncio.base_events.__file__, asyncio.runners.__file__})


class TracedTask(asyncio.Task):  # type: ignore[type-arg]
    """asyncio's C Task plus slots for its creation facts; ``cancel``
    remembers who called it.

    The factory writes ``_aiomonitor_record`` last, as False (not made yet,
    see :func:`traced_record`): a reader on another thread that finds it
    False finds the other slots written.  Only the loop thread writes into
    a task.  Tracing without history uses this class as is: no ``__del__``,
    whose mere presence costs every task a Python call when it is freed.
    """

    __slots__ = (
        "_aiomonitor_canceller",
        "_aiomonitor_created_at",
        "_aiomonitor_parent",
        "_aiomonitor_record",
        "_aiomonitor_site",
    )
    _aiomonitor_canceller: Canceller | None
    #: Where it was created (the app's line), and when (``time.monotonic``).
    _aiomonitor_site: FrameInfo
    _aiomonitor_created_at: float
    #: Its creator's raw record (None: made outside any traced task).
    _aiomonitor_parent: RawRecord | None
    #: Its own raw record once made (for its first child), else False.
    _aiomonitor_record: RawRecord | Literal[False]

    def cancel(self, msg: Any = None) -> bool:
        if not self.done() and getattr(self, "_aiomonitor_canceller", None) is None:
            current = asyncio.current_task(self.get_loop())
            self._aiomonitor_canceller = Canceller(
                None if current is None else id(current),
                None if current is None else current.get_name(),
                stack_above(sys._getframe(1), stop_files=_LOOP_DRIVER_FILES),
                monotonic(),
            )
        return super().cancel(msg)


# asyncio's reprs and reports name the class ("Task exception was never
# retrieved"): the app's logs read the same with the monitor as without.
TracedTask.__name__ = "Task"

_TASK_DEL = asyncio.Task.__del__  # called directly: super() costs ~0.4 us per task here


def traced_record(task: Any) -> RawRecord | None:
    """*task*'s raw record, or None if it was not made by a tracer's factory.

    Made from the task's slots when the factory has not made it yet, and
    then not stored: readers on the monitor's threads never write into a
    task.  (The copies they make are equal to what the loop thread would make.)
    """
    record = getattr(task, "_aiomonitor_record", None)
    return _record_from_slots(task) if record is False else record


def _made_record(task: TracedTask) -> RawRecord:
    """*task*'s raw record, made and kept (by the loop thread: it is creating a child)."""
    record = task._aiomonitor_record = _record_from_slots(task)
    return record


def _record_from_slots(task: TracedTask) -> RawRecord:
    return raw_record(id(task), task._aiomonitor_site, task._aiomonitor_parent, task._aiomonitor_created_at)


def history_task_class(history: History) -> type[TracedTask]:
    """A TracedTask class whose tasks enter one tracer's history when released.

    One class per tracer, so two monitors never write into each other's
    history, and the history is a closure variable rather than a slot filled
    in for every task.

    ``__del__`` is cheaper than a done callback (which costs a loop Handle
    per task), and for almost every task the release is the moment it
    finishes.  It reads the C Task's ``_state``/``_result``/``_exception``
    directly (read-only): ``task.exception()`` would mark the app's exception
    as retrieved and silence asyncio's own report.
    """

    class HistoryTracedTask(TracedTask):
        __slots__ = ()

        def __del__(self) -> None:
            try:
                self._aiomonitor_record  # noqa: B018 (written last: the other slots are set)
            except AttributeError:  # construction failed before the factory set it
                _TASK_DEL(self)
                return
            state = self._state
            value: Any = None
            # asyncio's finaliser only ever reports a task that raised or was
            # destroyed while pending; the call is skipped for the rest.
            report = False
            if state == "FINISHED":
                exc = self._exception
                if exc is None:
                    value = self._result  # type: ignore[attr-defined]
                    if value is not None:
                        value = keepable(value)
                else:
                    value = exception_summary(exc)
                    if self._log_traceback:  # asyncio is about to report it: nobody awaited it
                        value = (NEVER_RETRIEVED, value[1])
                    report = True
            elif state != "CANCELLED":
                value = "destroyed while pending"
                report = True
            history.add(  # looked up each time: a resize swaps it (History.resize)
                (
                    id(self),
                    self._aiomonitor_site,
                    self._aiomonitor_parent,
                    self._aiomonitor_created_at,
                    self.get_name(),
                    self._coro,  # type: ignore[attr-defined]
                    monotonic(),
                    state == "CANCELLED",
                    value,
                    self._aiomonitor_canceller,
                )
            )
            history.added += 1
            if report:
                _TASK_DEL(self)  # asyncio's own "destroyed but pending" / "never retrieved" reports

    HistoryTracedTask.__name__ = "Task"  # as TracedTask's
    return HistoryTracedTask


def _current_task_getter() -> Callable[[asyncio.AbstractEventLoop], Any]:
    """``asyncio.current_task``, or what it reads where it is written in
    Python (3.10, 3.11: a dict, whose ``get`` is five times cheaper)."""
    current_tasks = getattr(asyncio.tasks, "_current_tasks", None)
    if asyncio.current_task.__module__ == "asyncio.tasks" and isinstance(current_tasks, dict):
        return current_tasks.get
    return asyncio.current_task


def _closed_tracer(factory: object) -> bool:
    return getattr(factory, "aiomonitor_closed", False) is True


class AsyncioTracer:
    """Installs itself as the loop's task factory; ``close`` puts back the old one."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        history_size: int,
        timing: bool = False,
        carried: AsyncioTracer | None = None,
    ) -> None:
        """*carried*: a tracer switched off before, whose history, records and counts go on here."""
        self.loop = loop
        self.timing = timing
        if carried is None:
            self.history = History(history_size)
        else:  # the same history, so tasks the earlier tracer made still end up in it
            self.history = carried.history
            self.history.resize(history_size)
        #: Whether ended tasks are remembered (the backend reports this to commands).
        self.keeps_history = history_size > 0
        self._sites = CreationSites()
        #: Records of tasks made by the app's own factory (no slots to keep them in).
        self.foreign: weakref.WeakKeyDictionary[asyncio.Task[Any], RawRecord] = weakref.WeakKeyDictionary()
        #: (created, parent's record, time) of tasks the app's factory is making now.
        self._constructing: list[tuple[FrameInfo, RawRecord | None, float]] = []
        #: Tasks created since tracing began (in a list: see the factory).
        self.created: list[int] = [0] if carried is None else carried.created
        if carried is not None:
            self.foreign.update(carried.foreign)
        #: Cleared when closed but still under a factory put on top of ours:
        #: the factory then makes plain tasks (``trace off`` means off).
        self.active = [True]
        self.previous = loop.get_task_factory()
        self.factory = self._make_factory(framework_files(asyncio), self.history if self.keeps_history else None)
        self.factory.aiomonitor_previous = self.previous  # type: ignore[attr-defined]
        loop.set_task_factory(self.factory)

    def close(self) -> None:
        """Put back the factory found at start, whatever order monitors close in.

        Two traced monitors on one loop stack their factories: closing the
        first one first can't unhook it from under the second (whose factory
        calls it), so it is only marked closed, and whichever tracer comes
        off the top later unwinds every closed factory below it.  A factory
        the app installed on top of ours stays, and so does ours beneath it.
        """
        self.factory.aiomonitor_closed = True  # type: ignore[attr-defined]
        self.active[0] = False
        factory = self.loop.get_task_factory()
        if not _closed_tracer(factory):
            return
        while _closed_tracer(factory):
            factory = factory.aiomonitor_previous  # type: ignore[union-attr]
        self.loop.set_task_factory(factory)

    def _make_factory(self, skip: frozenset[str], history: History | None) -> Callable[..., Any]:
        # Everything inlined into locals: this runs once per task the app
        # creates, where a trivial task costs ~3 us in all (see benchmarks).
        previous = self.previous
        traced = TracedTask if history is None else history_task_class(history)
        counts = self.created  # a one-item list: the cheapest counter a closure can bump
        active = self.active
        getframe, current_task, monotonic = sys._getframe, _current_task_getter(), time.monotonic
        # Where asyncio.create_task() calls from, asked without making a frame
        # object where Python can (3.12+); else its frame is looked at.
        module_at = getattr(sys, "_getframemodulename", None)
        # On asyncio's own loops depth 1 is always BaseEventLoop.create_task
        # (Python); uvloop's create_task is C, so there depth 1 may be the app.
        first_depth = 2 if isinstance(self.loop, asyncio.BaseEventLoop) else 1
        sites, resolve = self._sites.memo, self._sites.resolve
        timing = self.timing
        create_task_code = asyncio.create_task.__code__
        create_task_module = asyncio.create_task.__module__
        # The app's frame where the last memoised site was found: its depth
        # (from the factory), code and instruction.  Tasks made in a loop are
        # made from the same frame and instruction at the same depth, so one
        # frame object is looked at, and neither asyncio.create_task's frame
        # nor the framework's.  (One instruction that calls asyncio.create_task
        # one time and some other spawner the next would be given the site of
        # the first: an app line either way.)
        last_depth = first_depth
        last_code: CodeType | None = None
        last_lasti = -1
        last_created = FrameInfo("", 0, "")  # unused until last_code is set

        def locate() -> FrameInfo:
            """The creation site, found the long way (depths are one more here)."""
            nonlocal last_depth, last_code, last_lasti, last_created
            depth = first_depth + 1
            if module_at is not None:
                if module_at(depth) == create_task_module:  # asyncio.create_task(): the usual caller
                    depth += 1
                frame = getframe(depth)
            else:
                frame = getframe(depth)
                if frame.f_code is create_task_code:
                    depth += 1
                    frame = getframe(depth)
            code = frame.f_code
            while code.co_filename in skip and frame.f_back is not None:
                depth += 1
                frame = getframe(depth)
                code = frame.f_code
            lasti = frame.f_lasti
            site = sites.get((id(code), lasti))
            if site is None:
                created, memoised = resolve(frame)
            else:
                created, memoised = site[1], True
            if memoised:
                last_depth, last_code, last_lasti, last_created = depth - 1, code, lasti, created
            return created

        def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
            if not active[0]:  # switched off beneath a factory the app put on top: pass through
                return (
                    previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
                )
            counts[0] += 1
            if timing:
                coro = TimedCoroutine(coro)
            # sys._getframe(depth) materialises one frame object, where walking
            # f_back would materialise each one on the way.
            try:
                frame = getframe(last_depth)
                created = last_created if frame.f_lasti == last_lasti and frame.f_code is last_code else locate()
            except ValueError:  # a stack shallower than the last one
                created = locate()
            parent = current_task(loop)
            if parent is None:
                parent_record = None
            else:
                # None: not traced; False: traced, its record not made yet.
                parent_record = getattr(parent, "_aiomonitor_record", None)
                if parent_record is False:
                    parent_record = _made_record(parent)
                elif parent_record is None and previous is not None:
                    parent_record = self._foreign_record(parent)
            if previous is not None:
                return self._foreign_task(previous, loop, coro, kwargs, created, parent_record)
            created_at = monotonic()
            # Without **kwargs when there are none: that call builds a dict.
            task = traced(coro, loop=loop, **kwargs) if kwargs else traced(coro, loop=loop)
            # No call among these writes, so no thread switch either: a reader
            # sees all the slots set or none (and the record one last, see TracedTask).
            task._aiomonitor_site = created
            task._aiomonitor_created_at = created_at
            task._aiomonitor_parent = parent_record
            # (An empty slot would do, but reading one raises inside: dearer than this.)
            task._aiomonitor_canceller = None
            task._aiomonitor_record = False
            return task

        return factory

    # -- tasks made by the app's own factory -------------------------------------

    def _foreign_task(
        self,
        previous: Callable[..., Any],
        loop: asyncio.AbstractEventLoop,
        coro: Any,
        kwargs: dict[str, Any],
        created: FrameInfo,
        parent_record: RawRecord | None,
    ) -> Any:
        """Let the app's factory make the task, then keep its record aside.

        An eager factory (3.12's ``eager_task_factory``) runs the task's first
        step inside ``previous``: tasks it creates then must find this one's
        record before it exists, hence ``_constructing``.
        """
        started = monotonic()
        self._constructing.append((created, parent_record, started))
        try:
            task = previous(loop, coro, **kwargs)
        finally:
            self._constructing.pop()
        try:
            adopted = task in self.foreign  # a child made during its eager first step adopted it
            if not adopted:
                self.foreign[task] = raw_record(id(task), created, parent_record, started)
        except TypeError:  # a task type without weak references: left untraced
            return task
        if self.keeps_history:
            # The coroutine is kept here: an eagerly finished task has dropped
            # it (and its get_coro() crashes CPython 3.12.0-3.12.4, gh-122332).
            task.add_done_callback(functools.partial(self._foreign_ended, coro))
        return task

    def _foreign_record(self, task: Any) -> RawRecord | None:
        record = self.foreign.get(task)
        if record is None and self._constructing:
            # The task running now is the one the app's eager factory is
            # constructing (its first step runs inside the factory).
            created, parent_record, started = self._constructing[-1]
            record = raw_record(id(task), created, parent_record, started)
            try:
                self.foreign[task] = record
            except TypeError:
                return None
        return record

    def _foreign_ended(self, coro: Any, task: asyncio.Task[Any]) -> None:
        # Private fields, read-only: task.exception() would mark the app's
        # exception as retrieved and silence asyncio's own report.
        cancelled = task.cancelled()
        exc = getattr(task, "_exception", None)
        value = None if cancelled else exception_summary(exc) if exc is not None else keepable(task.result())
        self.history.add(
            (*self.foreign.get(task, NO_RECORD)[:4], task.get_name(), coro, monotonic(), cancelled, value, None)
        )

    def record_of(self, task: Any) -> TaskRecord | None:
        record = traced_record(task)
        return to_record(record if record is not None else self.foreign.get(task))
