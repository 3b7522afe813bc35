"""Task tracing for asyncio: a task factory that remembers, cheaply.

The factory makes a subclass of asyncio's *C* Task (not the pure-Python one)
with slots for the record, and chains to a factory the app installed before
(whose tasks are then not traced: they have no slots).  Per task it costs a
frame lookup, a memoised FrameInfo and one tuple (measured: ~1.3x on a
create/await micro-benchmark); the history adds a ``__del__``.  Text is only
made when a command asks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from time import monotonic
from typing import Any

from . import FRAME_INFO_CACHE, FrameInfo
from ._frames import is_library
from ._timing import TimedCoroutine
from ._tracing import (
    Canceller,
    History,
    RawRecord,
    TaskRecord,
    exception_summary,
    framework_files,
    keepable,
    prefer_user_frame,
    stack_above,
    to_record,
)


class TracedTask(asyncio.Task):  # type: ignore[type-arg]
    """asyncio's C Task plus three slots.

    ``cancel`` remembers who called it.  ``__del__`` (cheaper than a done
    callback, which costs a loop Handle per task) hands the ended task's raw
    facts to the history: a task is recorded when it is released, which for
    almost every task is the moment it finishes.
    """

    __slots__ = ("_aiomonitor_canceller", "_aiomonitor_history", "_aiomonitor_record")
    _aiomonitor_canceller: Canceller | None
    _aiomonitor_history: History | None
    _aiomonitor_record: RawRecord

    def cancel(self, msg: Any = None) -> bool:
        if not self.done() and getattr(self, "_aiomonitor_canceller", None) is None:
            current = asyncio.current_task(self.get_loop())
            self._aiomonitor_canceller = Canceller(
                None if current is None else id(current),
                None if current is None else current.get_name(),
                stack_above(sys._getframe(1)),
            )
        return super().cancel(msg)

    def __del__(self) -> None:
        # Inlined and attribute-direct: this runs for every traced task.
        try:
            history = self._aiomonitor_history
        except AttributeError:  # construction failed before the factory set it
            history = None
        if history is not None:
            cancelled = False
            value: Any = "destroyed while pending"
            if self.done():
                cancelled = self.cancelled()
                if not cancelled:
                    # Never task.exception(): it would mark the app's exception
                    # as retrieved and silence asyncio's own report.
                    exc = getattr(self, "_exception", None)  # C Task internals, read-only
                    value = exception_summary(exc) if exc is not None else keepable(getattr(self, "_result", None))
            history.add(
                (
                    self._aiomonitor_record,
                    self.get_name(),
                    self._coro,  # type: ignore[attr-defined]
                    monotonic(),
                    cancelled,
                    value,
                    getattr(self, "_aiomonitor_canceller", None),
                )
            )
        super().__del__()  # asyncio's own "destroyed but pending" / "never retrieved" reports


class AsyncioTracer:
    """Installs itself as the loop's task factory; ``close`` puts back the old one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, history_size: int, timing: bool = False) -> None:
        self.loop = loop
        self.timing = timing
        self.history = History(history_size)
        self.previous = loop.get_task_factory()
        self.factory = self._make_factory(framework_files(asyncio), self.history if history_size > 0 else None)
        loop.set_task_factory(self.factory)

    def close(self) -> None:
        if self.loop.get_task_factory() is self.factory:
            self.loop.set_task_factory(self.previous)

    def _make_factory(self, skip: frozenset[str], history: History | None) -> Callable[..., Any]:
        # Everything inlined into locals: this runs once per task the app
        # creates, where a trivial task costs ~3 us in all (see benchmarks).
        previous, traced = self.previous, TracedTask
        getframe, current_task, monotonic = sys._getframe, asyncio.current_task, time.monotonic
        frame_info, cache = FrameInfo.from_frame, FRAME_INFO_CACHE
        # On asyncio's own loops depth 1 is always BaseEventLoop.create_task
        # (Python); uvloop's create_task is C, so there depth 1 may be the app.
        first_depth = 2 if isinstance(self.loop, asyncio.BaseEventLoop) else 1

        timing = self.timing

        def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
            if timing:
                coro = TimedCoroutine(coro)
            task = traced(coro, loop=loop, **kwargs) if previous is None else previous(loop, coro, **kwargs)
            if type(task) is not traced:
                return task  # the app's own factory made it: no slots to keep records in
            # sys._getframe(depth) materialises one frame object, where walking
            # f_back would materialise each one on the way.  Depth 1 is
            # asyncio's create_task, or the app's own frame when uvloop's
            # create_task (C) was called directly.
            depth = first_depth
            frame = getframe(depth)
            while frame.f_code.co_filename in skip and frame.f_back is not None:
                depth += 1
                frame = getframe(depth)
            if is_library(frame.f_code.co_filename):  # anyio's start_soon, a server's spawn
                frame = prefer_user_frame(frame)
            parent = current_task(loop)
            cached = cache.get((id(frame.f_code), frame.f_lasti))
            task._aiomonitor_record = (
                id(task),
                cached[1] if cached is not None else frame_info(frame),
                None if parent is None else getattr(parent, "_aiomonitor_record", None),
                monotonic(),
            )
            task._aiomonitor_history = history
            return task

        return factory

    def record_of(self, task: Any) -> TaskRecord | None:
        return to_record(getattr(task, "_aiomonitor_record", None))
