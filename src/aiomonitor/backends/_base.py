"""The interface between the monitor and one async framework.

Everything framework-specific (how to list tasks, read a task's stack, cancel
it, run code in the monitored loop's thread) lives behind :class:`Backend`.
Backends know nothing of telnet or sessions; the server knows nothing of
asyncio or trio internals.  Only frozen records (``_records``) cross threads,
never a live task object, so formatting can happen at leisure elsewhere.
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import importlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._columns import TaskColumns, columns_of
from ._records import CancelOutcome, Census, FrameInfo, TaskSnapshot, Wait

if TYPE_CHECKING:
    from ._records import Canceller, EndedTask, TaskRecord, TracingMemory

T = TypeVar("T")

#: How long a command waits for the monitored loop before giving up.  The
#: loop may be blocked by a synchronous call; the monitor must stay usable.
DEFAULT_HOP_TIMEOUT = 2.0
#: The name of the tasks the monitor itself runs in the monitored loop (console
#: statements, ``async def`` commands): hidden from the user's view by default.
MONITOR_TASK_NAME = "aiomonitor-console"
#: How often a waiting worker thread looks whether its client pressed Ctrl-C.
INTERRUPT_POLL = 0.1


class LoopUnresponsive(Exception):
    """The monitored loop did not run our callback in time (it is blocked)."""


class Interrupted(Exception):
    """The client pressed Ctrl-C while its work ran in the loop; it was cancelled."""


class UnknownTask(LookupError):
    """No live task has the given id."""


class NotCancellable(Exception):
    """The framework offers no way to cancel this one task (the reason is the message)."""


class Submission:
    """Work submitted to the monitored loop, watched from another thread.

    ``started`` resolves in the loop thread when the work first runs: that
    tells "the work is slow" from "the loop never picked it up" (a blocked
    loop).  ``future`` carries the result or exception.  :meth:`wait` is the
    one place where a monitor thread waits for the loop: commands, console
    statements and :meth:`Backend.run_sync` all go through it.
    """

    def __init__(self) -> None:
        self.started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._cancel: Callable[[], None] | None = None
        #: Read by a backend whose task only learns how to cancel itself once it
        #: runs: a cancel() that came earlier is applied then.
        self.cancel_requested = False

    def cancel(self) -> None:
        """Cancel the work (thread-safe; a no-op once finished).

        Before the loop picked it up, this withdraws it: it will never run.
        """
        self.cancel_requested = True
        if self._cancel is not None and not self.future.done():
            self._cancel()
        else:
            self.future.cancel()

    def wait(self, hop_timeout: float, interrupted: threading.Event | None = None) -> Any:
        """Block this (worker) thread until the work ends; its result, or its exception.

        Never call it from the server's event loop or the monitored loop's
        thread: it blocks.  Raises :class:`LoopUnresponsive` if the loop does
        not start the work within *hop_timeout* (the work is withdrawn), and
        :class:`Interrupted` once *interrupted* is set while the work runs
        (the work is cancelled and given *hop_timeout* to wind down).
        """
        deadline = time.monotonic() + hop_timeout
        while not (self.started.done() or self.future.done()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.cancel()
                raise LoopUnresponsive(f"the event loop did not respond within {hop_timeout:g} s (is it blocked?)")
            if interrupted is not None and interrupted.is_set():
                self.cancel()
                raise Interrupted("interrupted before the loop picked it up")
            poll = remaining if interrupted is None else min(remaining, INTERRUPT_POLL)
            concurrent.futures.wait([self.started, self.future], poll, concurrent.futures.FIRST_COMPLETED)
        while True:
            try:
                return self.future.result(INTERRUPT_POLL if interrupted is not None else None)
            except concurrent.futures.TimeoutError:  # not the builtin one before Python 3.11
                if interrupted is not None and interrupted.is_set():
                    self.cancel()
                    concurrent.futures.wait([self.future], hop_timeout)
                    raise Interrupted("interrupted") from None


class OneLook(Generic[T]):
    """A listing of every task, taken once and reused by this thread's reads
    while :meth:`held` lasts (``Backend.one_look``).

    Listing 100k tasks costs ~80 ms (asyncio) to ~300 ms (trio), and
    ``doctor`` asks half a dozen questions of the same tasks.  Thread-local:
    another client's command lists afresh.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def current(self) -> T | None:
        """The listing of the look this thread is in (taken now if not yet), or None."""
        listing: T | None = getattr(self._local, "listing", None)
        take: Callable[[], T] | None = getattr(self._local, "take", None)
        if listing is None and take is not None:
            self._local.take = None  # taking it lists afresh (a backend's reads call current())
            listing = self._local.listing = take()
        return listing

    @contextlib.contextmanager
    def held(self, take: Callable[[], T]) -> Iterator[None]:
        """A look for this thread; the listing is taken when first needed (a
        ``where`` answered from a cached task never lists them at all)."""
        if getattr(self._local, "take", None) is not None or self.current() is not None:
            yield  # nested: the outer look stands
            return
        self._local.take, self._local.listing = take, None
        try:
            yield
        finally:
            self._local.take = self._local.listing = None


class Backend(abc.ABC):
    """One monitored event loop, seen from the monitor's threads.

    Read-only methods (``snapshot``, ``stack``, ``task_count``) are called from
    the server's worker threads *without* hopping into the monitored loop: the
    loop may be blocked, and a walk from outside stalls it less than one inside
    (measured at 100k tasks; see the design notes).  Methods that change
    state hop into the loop with :meth:`run_sync` and a deadline.
    """

    #: The framework's module, offered in console namespaces (``asyncio``, ``trio``).
    framework: str = ""
    #: How long a hop into the loop may wait (the Monitor sets its own).
    hop_timeout: float = DEFAULT_HOP_TIMEOUT
    #: Whether creation records exist: tracing is on, or was (``trace off``
    #: keeps the records of the tasks traced so far).
    traced: bool = False
    #: Whether the tasks created now are traced, and since when (``time.time()``).
    tracing: bool = False
    tracing_since: float | None = None
    #: How many ended tasks the history keeps (0: none).
    history_size: int = 0
    #: Whether ended tasks are being remembered (a history longer than 0).
    keeps_history: bool = False
    #: Whether task steps are being timed.
    timed: bool = False

    def names_of(self, task_ids: Collection[int]) -> dict[int, str]:
        """The names of those of *task_ids* that are live tasks (a read, like ``snapshot``)."""
        wanted = set(task_ids)
        return {task.id: task.name for task in self.snapshot() if task.id in wanted}

    def ids_named(self, name: str) -> list[int]:
        """Ids of the live tasks named exactly *name* (a read, like ``snapshot``)."""
        return [task.id for task in self.snapshot() if task.name == name]

    def console_namespace(self) -> dict[str, Any]:
        """Names a console offers besides the app's ``locals``: the framework's module."""
        return {self.framework: importlib.import_module(self.framework)}

    def attach(self) -> None:  # noqa: B027 - an optional hook: a no-op unless a backend traces
        """Start tracing, if asked for (called by Monitor.start)."""

    def detach(self) -> None:  # noqa: B027 - an optional hook, as attach
        """Stop tracing (called by Monitor.close); tasks traced so far keep working."""

    def tracing_memory(self) -> TracingMemory | None:
        """What tracing holds now (None when nothing was traced); reads every
        task, handing the GIL over (``cost``)."""
        return None

    def retrace(self, trace: bool, history_size: int, timing: bool) -> None:
        """Trace the tasks created from now on (or stop): creation records, a
        history of *history_size* ended tasks, step timing.  Records, history
        and timings gathered so far stay.  Hops into the loop (``LoopUnresponsive``)."""
        raise NotImplementedError(f"{type(self).__name__} traces as it was started")

    def _tracing_switched(self, on: bool, history_size: int, timed: bool) -> None:
        """The flags after a switch (``retrace``, ``attach``)."""
        keeps_history = history_size > 0
        if on and not self.tracing:
            self.tracing_since = time.time()
        if keeps_history:
            self.history_size = history_size
        self.tracing = on
        self.traced = self.traced or on
        self.keeps_history = self.keeps_history or keeps_history
        self.timed = timed

    def await_edges(self) -> list[tuple[int, int, str]]:
        """(waiter id, awaited task id, how) for the await graph: "await",
        "gather", "taskgroup" or "nursery".  Empty if unknown."""
        return []

    def history(self) -> list[EndedTask]:
        """Recently ended tasks, oldest first (empty without tracing)."""
        return []

    def record(self, task_id: int) -> TaskRecord | None:
        """Creation facts of a live task (None without tracing, or if it predates it)."""
        return None

    def canceller(self, task_id: int) -> Canceller | None:
        """Who asked a live task to cancel (None if nobody did, or it is not known)."""
        return None

    @abc.abstractmethod
    def call_soon(self, callback: Callable[[], None]) -> None:
        """Schedule *callback* in the monitored loop's thread; never blocks.

        *callback* must not raise: a trio loop dies of an escaping exception.
        """

    @abc.abstractmethod
    def heartbeat(self, interval: float, beat: Callable[[], None]) -> Callable[[], None]:
        """Call *beat* in the loop's thread every *interval* seconds, from the
        loop's own timers, once the loop runs; return a stop function (any
        thread, idempotent).

        The loop's own timers, not posts from another thread: a busy loop
        runs a due timer as part of an iteration it makes anyway, and an idle
        one wakes once per beat, not twice.  *beat* must not raise.
        """

    @abc.abstractmethod
    def loop_thread_id(self) -> int | None:
        """The ident of the thread running the monitored loop, if known yet."""

    @abc.abstractmethod
    def snapshot(self) -> Iterator[TaskSnapshot]:
        """All live tasks, in a stable order, as a stream: consume it once.

        A stream, not a list, because every container allocated counts toward
        the cyclic GC's thresholds: holding 100k snapshot tuples at once made
        each ``ps`` trigger a full collection of the app's heap, with the GIL
        held.  Produced and dropped one at a time, they balance.
        """

    def snapshot_columns(self) -> Iterator[TaskColumns]:
        """``snapshot()`` in chunks of columns (see ``_columns``); the same
        stream, consumed once.  Backends that gather a field at a time
        override it, and derive ``snapshot`` from it."""
        return columns_of(self.snapshot())

    def snapshot_first(
        self, order: str | None, count: int, skip_name: str | None
    ) -> tuple[list[TaskSnapshot], int] | None:
        """The first *count* live tasks by *order* (``"id"``, ``"age"`` oldest
        first, or None: the order of :meth:`snapshot`) not named *skip_name*,
        found from a cheap attribute per task and snapshotted alone, with how
        many such tasks live; or None when this backend can't (the caller then
        sorts a full snapshot).

        ``ps -n 20`` at 100k tasks needs 20 snapshots, not 100k.
        """
        return None

    def snapshot_one(self, task_id: int) -> TaskSnapshot:
        """One live task's snapshot; raises UnknownTask.  Backends that can
        find a task without snapshotting all of them override this."""
        for task in self.snapshot():
            if task.id == task_id:
                return task
        raise UnknownTask(f"no task with id {task_id}")

    def trace_totals(self) -> tuple[int, int | None] | None:
        """With tracing: tasks created since it began, and tasks seen ending
        (None where they are not counted: without a history); else None."""
        return None

    def census(self) -> Census:
        """Live tasks counted by state and coroutine (``/metrics``); backends
        override this with a pass that builds no snapshot."""
        by_state: dict[str, int] = {}
        by_coro: dict[str, int] = {}
        for task in self.snapshot():
            by_state[task.state] = by_state.get(task.state, 0) + 1
            by_coro[task.coro] = by_coro.get(task.coro, 0) + 1
        return Census(by_state, by_coro)

    @abc.abstractmethod
    def task_count(self) -> int:
        """How many live tasks there are (cheaper than a snapshot)."""

    @abc.abstractmethod
    def stack(self, task_id: int) -> list[FrameInfo]:
        """The await stack of one task, outermost first; raises UnknownTask."""

    def details(self) -> Iterator[tuple[int, list[FrameInfo], TaskRecord | None, Canceller | None]]:
        """(id, await stack, creation record, canceller) of every live task, as
        a stream: a dump's pass.  Backends override this with one walk; this
        one finds each task anew."""
        for task in self.snapshot():
            with contextlib.suppress(UnknownTask):  # ended meanwhile
                yield task.id, self.stack(task.id), self.record(task.id), self.canceller(task.id)

    @abc.abstractmethod
    def current_task_id(self) -> int | None:
        """The task the loop is running right now (the blocker, if blocked)."""

    def one_look(self) -> contextlib.AbstractContextManager[None]:
        """Within, this thread's reads list the tasks once, as they were on
        entry (tasks that end meanwhile may still be seen, as done).  A no-op
        where a backend lists cheaply."""
        return contextlib.nullcontext()

    def running_task(self) -> tuple[int, str] | None:
        """(id, name) of the task the loop runs right now, for the stall
        recorder, which asks while the loop is stuck: backends answer without
        listing every task where they can."""
        task_id = self.current_task_id()
        if task_id is None:
            return None
        return task_id, self.names_of([task_id]).get(task_id, "?")

    def waits(self, task_ids: Collection[int] | None = None) -> list[Wait]:
        """What tasks are suspended on (all tasks, or those of *task_ids*):
        the primitive, where the task waits, and who holds it where that can
        be known or inferred.  Empty where the backend cannot tell."""
        return []

    def trace_facts(self) -> Iterator[tuple[int, FrameInfo | None, float | None, float | None]]:
        """(task id, creation site, created_at, longest step) of every live
        task, from tracing and timing (None where not known), as a stream.
        Backends can answer without reading stacks; this one snapshots."""
        for task in self.snapshot():
            yield task.id, task.created, task.created_at, task.longest_step

    def suspect_waits(self) -> list[Wait]:
        """The waits a diagnosis could report: on a task, on a lock or
        semaphore (with holders), or on something nothing else refers to.
        ``doctor`` needs these, not the 100k tasks sleeping or waiting on a
        shared event, which each cost a name lookup to describe."""
        return self.waits()

    def cancelling(self) -> list[tuple[int, float | None]]:
        """Live tasks whose cancellation was requested and not withdrawn, with
        when it was requested if that was recorded (tracing).  Empty where the
        framework does not tell (trio, asyncio before 3.11)."""
        return []

    @abc.abstractmethod
    def cancel(self, task_id: int, grace: float) -> CancelOutcome:
        """Cancel one task and wait up to *grace* seconds for it to finish."""

    @abc.abstractmethod
    def submit(self, async_fn: Callable[[], Awaitable[Any]]) -> Submission:
        """Run ``async_fn()`` as a new task in the monitored loop (thread-safe).

        The task runs in a copy of the caller's context, so a command's
        ``self._sout`` still finds its session there.
        """

    def run_sync(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Run *fn* in the monitored loop's thread and return its result.

        Runs in a monitor worker thread, never in the server's event loop: it
        blocks for up to *timeout* seconds (default: ``hop_timeout``).  If the
        loop does not get to *fn* in time, *fn* is withdrawn (it will not run
        later by surprise) and :class:`LoopUnresponsive` is raised.
        """
        if threading.get_ident() == self.loop_thread_id():
            return fn()
        submission = Submission()

        def run_in_loop() -> None:
            if not submission.future.set_running_or_notify_cancel():
                return  # withdrawn: the caller gave up waiting
            submission.started.set_result(None)
            try:
                submission.future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - delivered to the caller
                submission.future.set_exception(exc)

        self.call_soon(run_in_loop)
        result: T = submission.wait(self.hop_timeout if timeout is None else timeout)
        return result

    def loop_thread_stack(self) -> list[FrameInfo]:
        """The plain call stack of the loop's thread, outermost first."""
        return [FrameInfo.from_frame(frame) for frame in self._loop_thread_frames()]

    def _loop_thread_frames(self) -> list[FrameType]:
        ident = self.loop_thread_id()
        frame = sys._current_frames().get(ident) if ident is not None else None
        frames: list[FrameType] = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        frames.reverse()
        return frames

    def _callees_of(self, innermost: FrameType | None) -> list[FrameInfo]:
        """Plain frames the running task called from *innermost*: what blocks the loop."""
        frames = self._loop_thread_frames()
        for index, frame in enumerate(frames):
            if frame is innermost:
                return [FrameInfo.from_frame(f) for f in frames[index + 1 :]]
        return []
