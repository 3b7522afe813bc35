"""The trio backend.  Imported only when a trio monitor starts.

Tasks are found by walking the task tree from the root task through
``child_nurseries`` from the server's threads (the walk copies each level and
is retried if trio changes it meanwhile).  Hops into trio go through
``TrioToken.run_sync_soon`` with our own future and deadline:
``trio.from_thread`` would wait forever on a blocked loop.

Cancelling one task.  Trio has no ``Task.cancel()``: cancellation belongs to
cancel scopes, and a task's innermost scope may be shared with siblings (the
nursery's).  Cancelling the innermost scope only makes e.g. ``trio.sleep``
return early; injecting ``Cancelled`` by hand cancels siblings too.  So, as
the one sound way with public APIs, an Instrument wraps each *newly spawned*
task's coroutine in an outer ``CancelScope`` of its own, and ``cancel``
cancels that scope: the task sees ``trio.Cancelled`` at its next checkpoint,
can clean up (shields are respected), then ends quietly, without disturbing
siblings or its nursery.  Limits: tasks spawned before the monitor started
cannot be cancelled alone, and each spawn costs a few microseconds more, so
it can be switched off (``monitor_trio(cancellable_tasks=False)``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import itertools
import logging
import operator
import sys
import threading
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Any

import trio

from .._gil._passes import GilTurns, smallest_gently, tasks_with_ids, yielding
from . import _trio_waits
from ._base import MONITOR_TASK_NAME, Backend, LoopUnresponsive, NotCancellable, OneLook, Submission, UnknownTask
from ._columns import TaskColumns, snapshots_of
from ._frames import describe_chain
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
from ._tracing import MEMORY_SAMPLE, chain_bytes, history_bytes, to_record, trace_fields
from ._trio_cancel import cancel_alone
from ._trio_census import count_coroutines
from ._trio_snapshot import column_chunks, nursery_edges
from ._trio_timing import StepTimer
from ._trio_tracer import WRAPPER_CODE, TaskTracer, UnwrappedTaskTracer, frames_of, user_coro
from ._trio_walk import first_in_tree_order, walk_tree

log = logging.getLogger("aiomonitor")

_WALK_RETRIES = 100
#: A walk's answer: the tasks, and each one's parent id.
_Walked = tuple[list[trio.lowlevel.Task], list[int | None]]


#: What an untraced task sorts by in ``ps -s age``: after every traced one.
_UNRECORDED = (None, None, None, float("inf"))
#: Task names read per C loop: all 100k at once held the GIL ~25 ms (a property each).
_NAMES_CHUNK = 4096
_CREATED_AT = operator.itemgetter(3)  # a raw record's created_at (see _tracing.RawRecord)


def _retried(walk: Callable[[], _Walked]) -> _Walked:
    """*walk*, again while trio changes a collection under it (RuntimeError)."""
    for _ in range(_WALK_RETRIES):
        try:
            return walk()
        except RuntimeError:  # a collection changed size while we copied it
            continue
    raise LoopUnresponsive("the task tree kept changing while it was read; try again")


def _indexes_named(tasks: list[trio.lowlevel.Task], name: str | None) -> set[int]:
    """Where tasks called *name* are in *tasks* (the monitor's own: a few).

    Each chunk's names are read and compared by C loops, short enough not
    to stall the app; one ``list.index`` search of 100k names holds the GIL
    up to ~6 ms (a string compare per task).
    """
    if name is None:
        return set()
    turns = GilTurns()
    found: set[int] = set()
    name_of = operator.attrgetter("name")
    for start in range(0, len(tasks), _NAMES_CHUNK):
        same = map(operator.eq, map(name_of, tasks[start : start + _NAMES_CHUNK]), itertools.repeat(name))
        found.update(itertools.compress(itertools.count(start), same))
        turns.offer()
    return found


class TrioBackend(Backend):
    framework = "trio"

    def __init__(
        self, cancellable_tasks: bool = False, trace: bool = False, history_size: int = 0, timing: bool = False
    ) -> None:
        """Create in the trio thread, inside ``trio.run``."""
        self._token = trio.lowlevel.current_trio_token()
        root = trio.lowlevel.current_root_task()
        assert root is not None
        self._root = root
        self._thread_id = threading.get_ident()
        self._look: OneLook[tuple[list[trio.lowlevel.Task], list[int | None]]] = OneLook()
        self._instrument: TaskTracer | None = None
        self._cancellable = cancellable_tasks
        self._timer: StepTimer | None = None
        self._install(trace, history_size, timing)

    def _install(self, trace: bool, history_size: int, timing: bool) -> None:
        """In the trio thread: the instruments for these settings, carrying on
        the records, scopes and history of the ones before."""
        old = self._instrument
        keeps_history = trace and history_size > 0
        if old is not None:
            trio.lowlevel.remove_instrument(old)
        if self._cancellable or trace or (old is not None and old.records):
            # Tasks need a wrapper only for their own scope or for the history;
            # records of tasks traced before need an instrument to drop them when they exit.
            tracer_class = TaskTracer if self._cancellable or keeps_history else UnwrappedTaskTracer
            new = tracer_class(trace, history_size if trace else 0, self._cancellable)
            if old is not None:
                new.carry_on(old)
            self._instrument = new
            trio.lowlevel.add_instrument(new)
        if timing and self._timer is None:
            self._timer = StepTimer()
            trio.lowlevel.add_instrument(self._timer)
        elif not timing and self._timer is not None:
            trio.lowlevel.remove_instrument(self._timer)
            self._timer = None
        self._tracing_switched(trace or timing, history_size if trace else 0, timing)

    def tracing_memory(self) -> TracingMemory | None:
        instrument = self._instrument
        if instrument is None and self._timer is None:
            return None
        tasks = self._walk(ordered=False)[0]
        records = instrument.records if instrument is not None else {}
        timings = self._timer.stats if self._timer is not None else {}
        entry = sys.getsizeof(records) / len(records) if records else 0.0
        step = max(1, len(tasks) // MEMORY_SAMPLE)
        extra = []
        for task in tasks[::step][:MEMORY_SAMPLE]:
            record, stats = records.get(task), timings.get(task)
            added = 0.0 if record is None else entry + sys.getsizeof(record)
            if stats is not None:
                added += sys.getsizeof(stats)
            if getattr(task.coro, "cr_code", None) is WRAPPER_CODE:  # our wrapper: a scope, the history
                added += sys.getsizeof(task.coro)
            extra.append(added)
        live = {id(task) for task in tasks}
        history = history_bytes(instrument.history) if instrument is not None else 0
        chains = chain_bytes(map(operator.itemgetter(2), yielding(list(records.values()))), live)
        return TracingMemory(sum(extra) / len(extra) if extra else 0.0, len(records), chains, history)

    def retrace(self, trace: bool, history_size: int, timing: bool) -> None:
        self.run_sync(lambda: self._install(trace, history_size, timing))

    def detach(self) -> None:
        """Remove the instruments.  Already wrapped tasks keep working."""
        instruments = [i for i in (self._instrument, self._timer) if i is not None]
        self._instrument = self._timer = None
        for instrument in instruments:
            if threading.get_ident() == self._thread_id:
                trio.lowlevel.remove_instrument(instrument)
            else:  # closed from a monitor thread: the instruments belong to trio's
                with contextlib.suppress(LoopUnresponsive):
                    self.call_soon(functools.partial(trio.lowlevel.remove_instrument, instrument))

    def history(self) -> list[EndedTask]:
        return [] if self._instrument is None else self._instrument.history.items()

    def record(self, task_id: int) -> TaskRecord | None:
        if self._instrument is None:
            return None
        try:
            return to_record(self._instrument.records.get(self._find(task_id)))
        except UnknownTask:
            return None

    def call_soon(self, callback: Callable[[], None]) -> None:
        def guarded() -> None:
            # An exception escaping here would crash the app's trio.run.
            try:
                callback()
            except BaseException:
                log.exception("aiomonitor: callback in the trio thread failed")

        try:
            self._token.run_sync_soon(guarded)
        except trio.RunFinishedError:
            raise LoopUnresponsive("the trio run has finished") from None

    def heartbeat(self, interval: float, beat: Callable[[], None]) -> Callable[[], None]:
        scope = trio.CancelScope()

        async def beating() -> None:  # a system task: it must never raise, or the run dies
            with scope:
                while True:
                    await trio.sleep(interval)
                    try:
                        beat()
                    except Exception:
                        log.exception("aiomonitor: the stall recorder's heartbeat failed")
                        return

        def start() -> None:
            beat()  # the first beat is now, not when the beating task is first scheduled
            trio.lowlevel.spawn_system_task(beating, name=MONITOR_TASK_NAME)

        if threading.get_ident() == self._thread_id:
            start()
        else:
            self._call_soon_quietly(start)
        return lambda: self._call_soon_quietly(scope.cancel)

    def _call_soon_quietly(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(LoopUnresponsive):
            self.call_soon(callback)

    def loop_thread_id(self) -> int | None:
        return self._thread_id

    def one_look(self) -> contextlib.AbstractContextManager[None]:
        return self._look.held(lambda: self._walk(ordered=False))

    def _walk(self, ordered: bool = True) -> tuple[list[trio.lowlevel.Task], list[int | None]]:
        """Every task, parents first, and each one's parent id.

        Two flat lists rather than (task, parent) pairs: 100k pairs would be
        100k new GC-tracked objects (see Backend.snapshot).  ``ordered`` puts
        siblings in id order, for output that does not reshuffle between two
        ``ps``; lookups skip it.
        """
        pinned = None if ordered else self._look.current()
        if pinned is not None:
            return pinned
        return _retried(functools.partial(walk_tree, self._root, ordered))

    def await_edges(self) -> list[tuple[int, int, str]]:
        return nursery_edges(*self._walk(ordered=False))  # (pstree orders children itself)

    def _find(self, task_id: int) -> trio.lowlevel.Task:
        for task in tasks_with_ids(self._walk(ordered=False)[0], {task_id}):
            return task
        raise UnknownTask(f"no task with id {task_id}")

    def names_of(self, task_ids: Collection[int]) -> dict[int, str]:
        return {id(task): task.name for task in tasks_with_ids(self._walk(ordered=False)[0], set(task_ids))}

    def ids_named(self, name: str) -> list[int]:
        return [id(task) for task in self._walk(ordered=False)[0] if task.name == name]

    def task_count(self) -> int:
        return len(self._walk(ordered=False)[0])

    def current_task_id(self) -> int | None:
        for task in self._walk(ordered=False)[0]:
            if getattr(task.coro, "cr_running", False):
                return id(task)
        return None

    def snapshot(self) -> Iterator[TaskSnapshot]:
        return snapshots_of(self.snapshot_columns())

    def snapshot_columns(self) -> Iterator[TaskColumns]:
        return self._columns_of(*self._walk())

    def _columns_of(self, tasks: list[trio.lowlevel.Task], parents: list[int | None]) -> Iterator[TaskColumns]:
        records = self._instrument.records if self._instrument is not None else {}
        timings = self._timer.stats if self._timer is not None else {}
        return column_chunks(tasks, parents, records, timings)

    def snapshot_first(
        self, order: str | None, count: int, skip_name: str | None
    ) -> tuple[list[TaskSnapshot], int] | None:
        # Tree order (None) and age only: "id" is not the walk's order, so it
        # takes the full path.  By age, the walk need not be ordered: ties
        # go by id, as in the full path's sort key.
        if order not in (None, "age"):
            return None
        tasks, parents = self._walk(ordered=False)
        skipped = _indexes_named(tasks, skip_name)
        total = len(tasks) - len(skipped)
        if order is None:
            # The count from the unordered walk; the first few in tree order
            # from a walk that sorts only the siblings it will show.
            tasks, parents = _retried(functools.partial(first_in_tree_order, self._root, count + len(skipped)))
            skipped = _indexes_named(tasks, skip_name)
            chosen = list(itertools.islice((i for i in range(len(tasks)) if i not in skipped), count))
        else:
            # (created_at, id, index) per task, made by C-level map and zip:
            # a Python key function per task was most of the time at 100k.
            records = self._instrument.records if self._instrument is not None else {}
            ages = map(_CREATED_AT, map(records.get, tasks, itertools.repeat(_UNRECORDED)))
            ranked = zip(ages, map(id, tasks), range(len(tasks)), strict=True)
            firsts = smallest_gently(ranked, count + len(skipped))
            chosen = [index for _, _, index in firsts if index not in skipped][:count]
        shown = list(snapshots_of(self._columns_of([tasks[i] for i in chosen], [parents[i] for i in chosen])))
        return shown, total

    def trace_totals(self) -> tuple[int, int | None] | None:
        tracer = self._instrument  # endings are seen by the task wrapper, which UnwrappedTaskTracer lacks
        if tracer is None or not self.traced:
            return None
        return tracer.created, None if isinstance(tracer, UnwrappedTaskTracer) else tracer.history.added

    def snapshot_one(self, task_id: int) -> TaskSnapshot:
        tasks, parents = self._walk(ordered=False)
        for index, task in enumerate(tasks):
            if id(task) == task_id:
                return self._snapshot_of(task, parents[index])
        raise UnknownTask(f"no task with id {task_id}")

    def census(self) -> Census:
        running, by_coro = count_coroutines(self._walk(ordered=False)[0])
        by_state = {"waiting": sum(by_coro.values()) - running, "running": running}
        return Census({state: n for state, n in by_state.items() if n}, by_coro)

    def _snapshot_of(self, task: trio.lowlevel.Task, parent: int | None) -> TaskSnapshot:
        # One task, a field at a time: the rule snapshots' column passes
        # (_trio_snapshot) follow, and a test holds them to it.
        record = self._instrument.records.get(task) if self._instrument is not None else None
        stats = self._timer.stats.get(task) if self._timer is not None else None
        coro = user_coro(task)
        name, location = describe_chain(frames_of(task), getattr(coro, "__qualname__", None) or task.name)
        state = "running" if getattr(task.coro, "cr_running", False) else "waiting"
        return TaskSnapshot(id(task), task.name, state, name, location, parent, *trace_fields(record, stats))

    def running_task(self) -> tuple[int, str] | None:
        return _trio_waits.running_task(self._loop_thread_frames())

    def waits(self, task_ids: Collection[int] | None = None) -> list[Wait]:
        return _trio_waits.waits(self._walk(ordered=False)[0], frames_of, task_ids)

    def suspect_waits(self) -> list[Wait]:
        return _trio_waits.waits(self._walk(ordered=False)[0], frames_of, None, suspects_only=True)

    def trace_facts(self) -> Iterator[tuple[int, FrameInfo | None, float | None, float | None]]:
        records = self._instrument.records if self._instrument is not None else {}
        timings = self._timer.stats if self._timer is not None else {}
        for task in yielding(self._walk(ordered=False)[0]):
            record, stats = records.get(task), timings.get(task)
            created = (None, None) if record is None else (record[1], record[3])
            yield id(task), *created, None if stats is None else stats.longest

    def stack(self, task_id: int) -> list[FrameInfo]:
        return self._stack_of(self._find(task_id))

    def details(self) -> Iterator[tuple[int, list[FrameInfo], TaskRecord | None, Canceller | None]]:
        records = self._instrument.records if self._instrument is not None else {}
        for task in yielding(self._walk(ordered=False)[0]):
            yield id(task), self._stack_of(task), to_record(records.get(task)), None

    def _stack_of(self, task: trio.lowlevel.Task) -> list[FrameInfo]:
        frames = frames_of(task)
        stack = [FrameInfo.from_frame(frame) for frame in frames]
        if getattr(task.coro, "cr_running", False):
            # A running task's chain ends where it runs; with only our wrapper
            # in it (removed above), the app's frames are all its callees.
            innermost = frames[-1] if frames else getattr(task.coro, "cr_frame", None)
            stack.extend(self._callees_of(innermost))
        return stack

    def cancel(self, task_id: int, grace: float) -> CancelOutcome:
        task = self._find(task_id)
        instrument = self._instrument
        finished = threading.Event()
        ending: list[str] = []

        def on_exit(scope: trio.CancelScope) -> None:
            ending.append("cancelled" if scope.cancelled_caught else "finished without re-raising Cancelled")
            finished.set()

        def ended(how: str) -> None:
            ending.append(how)
            finished.set()

        def request() -> str | None:
            if instrument is not None and task in instrument.scopes:  # a scope of its own: the public way
                instrument.waiters[task] = on_exit
                instrument.scopes[task].cancel()
                return None
            return cancel_alone(task, ended)  # see _trio_cancel

        refusal = self.run_sync(request)
        if refusal is not None:
            raise NotCancellable(f"task {task_id} can't be cancelled: {refusal}")
        if not finished.wait(grace):
            return CancelOutcome(task_id, requested=True, finished=False)
        return CancelOutcome(task_id, requested=True, finished=True, ending=ending[0])

    def submit(self, async_fn: Callable[[], Awaitable[Any]]) -> Submission:
        submission = Submission()
        future = submission.future
        context = contextvars.copy_context()

        async def runner() -> None:
            with trio.CancelScope() as scope:
                submission._cancel = lambda: self.call_soon(scope.cancel)
                if submission.cancel_requested:
                    scope.cancel()
                submission.started.set_result(None)
                try:
                    result = await async_fn()
                except trio.Cancelled:
                    future.set_exception(concurrent.futures.CancelledError())
                    raise
                except BaseException as exc:  # noqa: BLE001 - a system task must not raise
                    future.set_exception(exc)
                else:
                    future.set_result(result)

        def start() -> None:
            if future.set_running_or_notify_cancel():
                trio.lowlevel.spawn_system_task(runner, name=MONITOR_TASK_NAME, context=context)

        self.call_soon(start)
        return submission
