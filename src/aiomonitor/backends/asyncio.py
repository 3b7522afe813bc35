"""The asyncio backend (also serves uvloop, whose tasks are asyncio tasks).

Reads happen from the monitor's threads without entering the loop; only
cancel and submit hop in, through ``loop.call_soon_threadsafe``.  Nothing here
replaces the loop's task class or factory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import itertools
import operator
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from typing import Any

from .._gil._passes import count_gently, release_gently, smallest_gently, sorted_by_id, tasks_with_ids, yielding
from ._asyncio_edges import await_edges_of
from ._asyncio_snapshot import column_chunks
from ._asyncio_tracer import AsyncioTracer, TracedTask, traced_record
from ._asyncio_waits import waits_of
from ._base import MONITOR_TASK_NAME, Backend, LoopUnresponsive, OneLook, Submission, UnknownTask
from ._columns import TaskColumns, snapshots_of
from ._frames import await_chain, describe_chain
from ._records import (
    Canceller,
    CancelOutcome,
    Census,
    EndedTask,
    FrameInfo,
    TaskRecord,
    TaskSnapshot,
    TracingMemory,
    Wait,
)
from ._timing import TimedCoroutine, stats_of
from ._tracing import MEMORY_SAMPLE, chain_bytes, history_bytes, trace_fields

#: What a foreign (the app's factory's) task's record costs beyond the record: a weak dict entry.
_WEAK_ENTRY = 3 * 8 + 64


def _task_bytes(task: asyncio.Task[Any], record: Any) -> float:
    """What tracing adds to one task: the subclass's slots and what they
    hold of its own (its timestamp, its record once made), or a side-table
    entry and the record, and the step-timing proxy with its stats."""
    kind = type(task)
    if isinstance(task, TracedTask):
        added = kind.__basicsize__ - asyncio.Task.__basicsize__ + sys.getsizeof(task._aiomonitor_created_at)
        made = getattr(task, "_aiomonitor_record", False)
        if made is not False:
            added += sys.getsizeof(made)
    else:
        added = _WEAK_ENTRY + sys.getsizeof(record)
    coro = getattr(task, "_coro", None)
    if type(coro) is TimedCoroutine:
        added += sys.getsizeof(coro) + sys.getsizeof(coro.stats)
    return added


def _coro_of(task: asyncio.Task[Any]) -> Any:
    # Task.get_coro() segfaults on eagerly finished tasks in CPython
    # 3.12.0-3.12.4 (gh-122332); the attribute read is safe everywhere.
    return getattr(task, "_coro", None)


def _coro_name(coro: Any) -> str:
    if type(coro) is TimedCoroutine:
        coro = coro.coro
    return getattr(coro, "__qualname__", None) or type(coro).__qualname__


def _task_coro_name(task: asyncio.Task[Any]) -> str:
    return _coro_name(_coro_of(task))


def _cancelling_of(task: asyncio.Task[Any]) -> int:
    cancelling = getattr(task, "cancelling", None)
    return cancelling() if cancelling is not None else 0


def _state(task: asyncio.Task[Any], current: asyncio.Task[Any] | None) -> str:
    if task is current:
        return "running"
    if task.done():
        return "done"
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    if cancelling is not None and cancelling():
        return "cancelling"
    return "pending"


#: Up to this many tasks are looked up one by one rather than listed.
_FEW = 8


class AsyncioBackend(Backend):
    framework = "asyncio"

    def __init__(
        self, loop: asyncio.AbstractEventLoop, trace: bool = True, history_size: int = 0, timing: bool = False
    ) -> None:
        self._loop = loop
        self._trace = trace or timing
        self._timing = timing
        self._history_size = history_size
        self._tracer: AsyncioTracer | None = None
        # The monitor may start before the loop runs; assume the starting thread
        # runs it (as the classic API did) until the loop tells us otherwise.
        self._thread_id: int | None = threading.get_ident()
        #: The task _find found last (weakly): ``where`` asks for its stack,
        #: creation record and canceller, and each lookup would otherwise
        #: copy the whole task registry (tens of ms at 100k tasks).
        self._last_found: weakref.ref[asyncio.Task[Any]] | None = None
        self._look: OneLook[set[asyncio.Task[Any]]] = OneLook()
        self.call_soon(self._record_thread)

    def console_namespace(self) -> dict[str, Any]:
        # ``loop``: the monitored loop, as aiomonitor 0.4's console offered it.
        return {**super().console_namespace(), "loop": self._loop}

    def attach(self) -> None:
        if self._trace and self._tracer is None:
            self._tracer = AsyncioTracer(self._loop, self._history_size, self._timing)
            self._tracing_switched(True, self._history_size, self._timing)

    def detach(self) -> None:
        if self._tracer is not None:
            self._tracer.close()

    def tracing_memory(self) -> TracingMemory | None:
        tracer = self._tracer
        if tracer is None:
            return None
        tasks = list(yielding(self._tasks()))
        # Read from the tracer's slots in C passes (see TracedTask): no record
        # is made for the tasks that have none yet.
        # marks: a task's creation site, or its side-table record when the
        # app's own factory made it; anything but None means traced.
        marks: list[Any] = list(map(getattr, tasks, itertools.repeat("_aiomonitor_site"), itertools.repeat(None)))
        creators = list(map(getattr, tasks, itertools.repeat("_aiomonitor_parent"), itertools.repeat(None)))
        foreign = tracer.foreign
        if foreign and None in marks:  # made by the app's own task factory: a call a task
            found = [None if mark is not None else foreign.get(t) for t, mark in zip(tasks, marks, strict=True)]
            marks = [mark if record is None else record for mark, record in zip(marks, found, strict=True)]
            creators = [c if r is None else r[2] for c, r in zip(creators, found, strict=True)]
        traced = len(marks) - marks.count(None)
        # A sample of every task, the untraced left out: no 100k-item list to build and free.
        step = max(1, len(tasks) // MEMORY_SAMPLE)
        looked = [t for t, mark in zip(tasks[::step], marks[::step], strict=True) if mark is not None]
        if len(looked) < min(traced, MEMORY_SAMPLE):  # few traced among many (tracing switched on lately)
            looked = list(itertools.islice(itertools.compress(tasks, marks), MEMORY_SAMPLE))
        extra = [_task_bytes(task, foreign.get(task)) for task in looked[:MEMORY_SAMPLE]]
        live = {id(task) for task in tasks}
        memory = TracingMemory(
            sum(extra) / len(extra) if extra else 0.0,
            traced,
            chain_bytes(yielding(creators), live),
            history_bytes(tracer.history),
        )
        release_gently(live, marks, creators, tasks)
        return memory

    def retrace(self, trace: bool, history_size: int, timing: bool) -> None:
        def switch() -> None:
            old = self._tracer
            if old is not None and self.tracing:
                old.close()  # tasks it traced keep their records; its history goes on below
            if trace or timing:
                self._tracer = AsyncioTracer(self._loop, history_size if trace else 0, timing, carried=old)
            self._tracing_switched(trace or timing, history_size if trace else 0, timing)

        self.run_sync(switch)

    def history(self) -> list[EndedTask]:
        return [] if self._tracer is None else self._tracer.history.items()

    def record(self, task_id: int) -> TaskRecord | None:
        if self._tracer is None:
            return None
        try:
            return self._tracer.record_of(self._find(task_id))
        except UnknownTask:
            return None

    def canceller(self, task_id: int) -> Canceller | None:
        try:
            canceller: Canceller | None = getattr(self._find(task_id), "_aiomonitor_canceller", None)
        except UnknownTask:
            return None
        return canceller

    def _record_thread(self) -> None:
        self._thread_id = threading.get_ident()

    def call_soon(self, callback: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError as exc:  # loop closed
            raise LoopUnresponsive(f"the event loop is closed ({exc})") from None

    def heartbeat(self, interval: float, beat: Callable[[], None]) -> Callable[[], None]:
        loop = self._loop
        handle: asyncio.TimerHandle | None = None
        stopped = False

        def tick() -> None:
            nonlocal handle
            if not stopped:
                beat()
                handle = loop.call_later(interval, tick)

        def stop() -> None:
            nonlocal stopped
            stopped = True  # a tick already queued does nothing and schedules nothing
            if handle is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to cancel
                    loop.call_soon_threadsafe(handle.cancel)

        if loop.is_running() and threading.get_ident() == self._thread_id:
            tick()  # started from the app's own code: the first beat is now
        else:  # from elsewhere, or before the loop runs: when the loop gets to it
            with contextlib.suppress(LoopUnresponsive):
                self.call_soon(tick)
        return stop

    def loop_thread_id(self) -> int | None:
        return self._thread_id

    def one_look(self) -> contextlib.AbstractContextManager[None]:
        return self._look.held(lambda: asyncio.all_tasks(self._loop))

    def _tasks(self) -> set[asyncio.Task[Any]]:
        pinned = self._look.current()
        if pinned is not None:
            return pinned
        # all_tasks() is safe to call from another thread: it copies the
        # registry, retrying if the loop mutates it meanwhile.
        return asyncio.all_tasks(self._loop)

    def _find(self, task_id: int) -> asyncio.Task[Any]:
        last_ref = self._last_found
        last = last_ref() if last_ref is not None else None
        # A live object's id is unique, and all_tasks() holds exactly the tasks not done.
        if last is not None and id(last) == task_id and not last.done():
            return last
        for task in tasks_with_ids(self._tasks(), {task_id}):
            self._last_found = weakref.ref(task)
            return task
        raise UnknownTask(f"no task with id {task_id}")

    def names_of(self, task_ids: Collection[int]) -> dict[int, str]:
        return {id(task): task.get_name() for task in tasks_with_ids(self._tasks(), set(task_ids))}

    def ids_named(self, name: str) -> list[int]:
        # No snapshot needed: names are a plain attribute read per task.
        return [id(task) for task in self._tasks() if task.get_name() == name]

    def task_count(self) -> int:
        return len(self._tasks())

    def current_task_id(self) -> int | None:
        current = asyncio.current_task(self._loop)
        return None if current is None else id(current)

    def snapshot(self) -> Iterator[TaskSnapshot]:
        return snapshots_of(self.snapshot_columns())

    def snapshot_columns(self) -> Iterator[TaskColumns]:
        return self._columns_of(sorted_by_id(self._tasks()))

    def _columns_of(self, tasks: Iterable[asyncio.Task[Any]]) -> Iterator[TaskColumns]:
        foreign = self._tracer.foreign if self._tracer is not None else None
        return column_chunks(tasks, asyncio.current_task(self._loop), foreign, _state)

    def snapshot_first(
        self, order: str | None, count: int, skip_name: str | None
    ) -> tuple[list[TaskSnapshot], int] | None:
        order = order or "id"  # the snapshot's own order
        if order == "age" and self._tracer is None:
            return None
        tasks = self._tasks()  # once: all_tasks() is a Python loop over every task (~80 ms at 100k)
        skipped = set() if skip_name is None else {t for t in yielding(tasks) if t.get_name() == skip_name}
        if order == "id":
            chosen = smallest_gently(tasks, count + len(skipped), key=id)
        elif order == "age" and self._tracer is not None:
            foreign = self._tracer.foreign

            def age_order(task: asyncio.Task[Any]) -> tuple[float, int]:
                # Ties in age by id, as a stable sort of the id-ordered snapshot would have them.
                created_at = getattr(task, "_aiomonitor_created_at", None)
                if created_at is None and (record := foreign.get(task)) is not None:
                    created_at = record[3]
                return (float("inf") if created_at is None else created_at), id(task)

            chosen = smallest_gently(tasks, count + len(skipped), key=age_order)
        else:
            return None
        chosen = [task for task in chosen if task not in skipped][:count]
        return list(snapshots_of(self._columns_of(chosen))), len(tasks) - len(skipped)

    def trace_totals(self) -> tuple[int, int | None] | None:
        tracer = self._tracer
        if tracer is None:
            return None
        # Ended tasks are heard of when released (the history's __del__), so only with a history.
        return tracer.created[0], tracer.history.added if tracer.keeps_history else None

    def snapshot_one(self, task_id: int) -> TaskSnapshot:
        return self._snapshot_of(self._find(task_id))

    def census(self) -> Census:
        # C-level passes (see count_gently): a Python call per task would be
        # ~30 ms at 100k, past the scrape budget with all_tasks() on top.
        live = self._tasks()
        tasks = list(live)
        current = asyncio.current_task(self._loop)
        running = 1 if current in live else 0
        cancelling = 0
        if hasattr(asyncio.Task, "cancelling"):  # Python 3.11+
            counts = count_gently(tasks, operator.methodcaller("cancelling"), _cancelling_of)
            cancelling = sum(n for value, n in counts.items() if value)
            if running and current is not None and _cancelling_of(current):
                cancelling -= 1
        by_state = {"pending": len(tasks) - running - cancelling, "cancelling": cancelling, "running": running}
        # One C pass through task._coro.__qualname__ (see _coro_of); chunks
        # with a wrapped (trace_timing) or odd coroutine take the full rule.
        by_coro = count_gently(tasks, operator.attrgetter("_coro.__qualname__"), _task_coro_name)
        return Census({state: n for state, n in by_state.items() if n}, by_coro)

    def _snapshot_of(self, task: asyncio.Task[Any]) -> TaskSnapshot:
        # One task, a field at a time: the rule snapshots' column passes
        # (_asyncio_snapshot) follow, and a test holds them to it.
        current = asyncio.current_task(self._loop)
        foreign = self._tracer.foreign if self._tracer is not None else None
        coro = _coro_of(task)
        # (task id, created, parent's record, created_at): see the tracer.
        record = traced_record(task)
        if record is None and foreign:  # made by the app's own task factory
            record = foreign.get(task)
        stats = stats_of(coro)
        name, location = describe_chain(await_chain(coro), _coro_name(coro))
        return TaskSnapshot(
            id(task), task.get_name(), _state(task, current), name, location, None, *trace_fields(record, stats)
        )

    def await_edges(self) -> list[tuple[int, int, str]]:
        return await_edges_of(self._tasks())

    def running_task(self) -> tuple[int, str] | None:
        current = asyncio.current_task(self._loop)  # a dict read: cheap while the loop is stuck
        return None if current is None else (id(current), current.get_name())

    def waits(self, task_ids: Collection[int] | None = None) -> list[Wait]:
        if task_ids is not None and len(task_ids) <= _FEW:  # ``where``: found without a listing
            found = []
            for task_id in task_ids:
                with contextlib.suppress(UnknownTask):
                    found.append(self._find(task_id))
            return waits_of(found, None, everyone=self._tasks)
        return waits_of(self._tasks(), task_ids, everyone=self._tasks)

    def suspect_waits(self) -> list[Wait]:
        return waits_of(self._tasks(), None, everyone=self._tasks, suspects_only=True)

    def trace_facts(self) -> Iterator[tuple[int, FrameInfo | None, float | None, float | None]]:
        foreign = self._tracer.foreign if self._tracer is not None else None
        for task in yielding(self._tasks()):
            site = getattr(task, "_aiomonitor_site", None)
            created_at = getattr(task, "_aiomonitor_created_at", None)
            if site is None and foreign and (record := foreign.get(task)) is not None:
                site, created_at = record[1], record[3]
            coro = getattr(task, "_coro", None)
            longest = coro.stats.longest if type(coro) is TimedCoroutine else None
            yield id(task), site, created_at, longest

    def cancelling(self) -> list[tuple[int, float | None]]:
        found: list[tuple[int, float | None]] = []
        for task in yielding(self._tasks()):
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if cancelling is not None and cancelling() and not task.done():
                canceller = getattr(task, "_aiomonitor_canceller", None)
                found.append((id(task), None if canceller is None else canceller.requested_at))
        return found

    def stack(self, task_id: int) -> list[FrameInfo]:
        return self._stack_of(self._find(task_id), asyncio.current_task(self._loop))

    def details(self) -> Iterator[tuple[int, list[FrameInfo], TaskRecord | None, Canceller | None]]:
        running = asyncio.current_task(self._loop)
        tracer = self._tracer
        for task in yielding(self._tasks()):
            record = tracer.record_of(task) if tracer is not None else None
            yield id(task), self._stack_of(task, running), record, getattr(task, "_aiomonitor_canceller", None)

    def _stack_of(self, task: asyncio.Task[Any], running: asyncio.Task[Any] | None) -> list[FrameInfo]:
        frames = await_chain(_coro_of(task))
        stack = [FrameInfo.from_frame(f) for f in frames]
        if frames and task is running:
            stack.extend(self._callees_of(frames[-1]))
        return stack

    def cancel(self, task_id: int, grace: float) -> CancelOutcome:
        task = self._find(task_id)
        finished = threading.Event()

        def request() -> bool:
            if task.done():
                return False
            task.add_done_callback(lambda _: finished.set())
            return task.cancel()

        requested = self.run_sync(request)
        if not requested:
            return CancelOutcome(task_id, requested=False, finished=True, ending="already finished")
        if not finished.wait(grace):
            return CancelOutcome(task_id, requested=True, finished=False)
        # Not task.exception(): that would mark the app's exception as
        # retrieved and silence asyncio's own "never retrieved" report.
        ending = "cancelled" if task.cancelled() else "finished without re-raising CancelledError"
        return CancelOutcome(task_id, requested=True, finished=True, ending=ending)

    def submit(self, async_fn: Callable[[], Awaitable[Any]]) -> Submission:
        submission = Submission()
        loop = self._loop
        context = contextvars.copy_context()

        async def runner() -> Any:
            submission.started.set_result(None)
            return await async_fn()

        def copy_outcome(task: asyncio.Task[Any]) -> None:
            future = submission.future
            if task.cancelled():
                future.set_exception(concurrent.futures.CancelledError())
            elif (exc := task.exception()) is not None:
                future.set_exception(exc)
            else:
                future.set_result(task.result())

        def start() -> None:
            # create_task copies the current context: make it the submitter's.
            task = context.run(loop.create_task, runner(), name=MONITOR_TASK_NAME)

            def cancel_task() -> None:
                loop.call_soon_threadsafe(task.cancel)

            submission._cancel = cancel_task
            if not submission.future.set_running_or_notify_cancel():
                task.cancel()  # withdrawn before the loop got to it: never runs
                return
            task.add_done_callback(copy_outcome)

        self.call_soon(start)
        return submission
