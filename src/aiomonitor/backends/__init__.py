"""The interface between the monitor and one async framework.

Everything framework-specific (how to list tasks, read a task's stack, cancel
it, run code in the monitored loop's thread) lives behind :class:`Backend`.
Backends know nothing of telnet or sessions; the server knows nothing of
asyncio or trio internals.  Only frozen snapshots cross threads, never a live
task object, so formatting can happen at leisure in the server thread.
"""

from __future__ import annotations

import abc
import concurrent.futures
import heapq
import importlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

T = TypeVar("T")

#: How long a command waits for the monitored loop before giving up.  The
#: loop may be blocked by a synchronous call; the monitor must stay usable.
DEFAULT_HOP_TIMEOUT = 2.0


class LoopUnresponsive(Exception):
    """The monitored loop did not run our callback in time (it is blocked)."""


class UnknownTask(LookupError):
    """No live task has the given id."""


class NotCancellable(Exception):
    """The framework offers no way to cancel this one task (the reason is the message)."""


# Snapshots are NamedTuples, not frozen dataclasses: as immutable, and a
# 100k-task snapshot builds 200k of them, where a frozen dataclass's
# object.__setattr__ per field cost a third of the whole ``ps``.


class FrameInfo(NamedTuple):
    """One frame of a stack: enough to print it, no live frame object."""

    filename: str
    lineno: int
    name: str

    @classmethod
    def from_frame(cls, frame: FrameType) -> FrameInfo:
        """Memoised by (code, instruction): reading ``f_lineno`` of a suspended
        frame rescans the code's line table (~3 us), and 100k tasks usually
        wait at a handful of places."""
        code = frame.f_code
        # Keyed by id(code): hashing a code object hashes its whole content.
        # The entry keeps the code alive, so the id cannot be reused.
        cached = FRAME_INFO_CACHE.get((id(code), frame.f_lasti))
        if cached is None:
            if len(FRAME_INFO_CACHE) >= FRAME_INFO_CACHE_SIZE:
                FRAME_INFO_CACHE.clear()
            cached = (code, cls(code.co_filename, frame.f_lineno, code.co_name))
            FRAME_INFO_CACHE[(id(code), frame.f_lasti)] = cached
        return cached[1]


# A memo of a pure function (the same code and instruction always map to the
# same line), so sharing it between monitors is harmless; bounded.
FRAME_INFO_CACHE: dict[tuple[int, int], tuple[CodeType, FrameInfo]] = {}
FRAME_INFO_CACHE_SIZE = 50_000


class TaskSnapshot(NamedTuple):
    """What one task looked like at the moment of the snapshot."""

    id: int
    name: str
    state: str
    coro: str
    location: FrameInfo | None
    #: The task whose nursery holds this one (trio's tree); None on asyncio.
    parent_id: int | None = None
    #: With tracing: where and when the task was created, and by which task.
    created: FrameInfo | None = None
    created_at: float | None = None
    creator_id: int | None = None
    #: With trace_timing: steps run, total busy seconds, longest step in seconds.
    steps: int | None = None
    busy: float | None = None
    longest_step: float | None = None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What happened when we asked a task to cancel."""

    task_id: int
    #: False when the task had already finished, so there was nothing to cancel.
    requested: bool
    #: True when the task finished within the grace period after the request.
    finished: bool
    #: A short description of how it ended (``"cancelled"``, an exception repr).
    ending: str = ""


class Submission:
    """A coroutine submitted to the monitored loop, watched from another thread.

    ``started`` resolves in the loop thread when the coroutine first runs; the
    console uses it to tell "the statement is slow" from "the loop never picked
    it up" (a blocked loop).  ``future`` carries the result or exception.
    """

    def __init__(self) -> None:
        self.started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._cancel: Callable[[], None] | None = None
        #: Read by a backend whose task only learns how to cancel itself once it
        #: runs: a cancel() that came earlier is applied then.
        self.cancel_requested = False

    def cancel(self) -> None:
        """Cancel the coroutine (thread-safe; a no-op once finished)."""
        self.cancel_requested = True
        if self._cancel is not None and not self.future.done():
            self._cancel()
        else:
            self.future.cancel()


class Backend(abc.ABC):
    """One monitored event loop, seen from the monitor's threads.

    Read-only methods (``snapshot``, ``stack``, ``task_count``) are called from
    the server's worker threads *without* hopping into the monitored loop: the
    loop may be blocked, and a walk from outside stalls it less than one inside
    (measured: at 100k tasks, <=11 ms against 26-35 ms).  Methods that change
    state hop into the loop with :meth:`run_sync` and a deadline.
    """

    #: The framework's module, offered in console namespaces (``asyncio``, ``trio``).
    framework: str = ""
    #: How long a hop into the loop may wait (the Monitor sets its own).
    hop_timeout: float = DEFAULT_HOP_TIMEOUT
    #: Whether creation is being recorded.
    traced: bool = False
    #: Whether ended tasks are being remembered (a history longer than 0).
    keeps_history: bool = False
    #: Whether task steps are being timed.
    timed: bool = False

    def attach(self) -> None:  # noqa: B027 - an optional hook: a no-op unless a backend traces
        """Start tracing, if asked for (called by Monitor.start)."""

    def detach(self) -> None:  # noqa: B027 - an optional hook, as attach
        """Stop tracing (called by Monitor.close); tasks traced so far keep working."""

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
    def loop_thread_id(self) -> int | None:
        """The ident of the thread running the monitored loop, if known yet."""

    @abc.abstractmethod
    def snapshot(self) -> Iterator[TaskSnapshot]:
        """All live tasks, in a stable order, as a stream: consume it once.

        A stream, not a list, because every container allocated counts toward
        the cyclic GC's thresholds: holding 100k snapshot tuples at once made
        each ``ps`` trigger a full collection of the app's heap (130-160 ms
        with the GIL held).  Produced and dropped one at a time, they balance.
        """

    @abc.abstractmethod
    def task_count(self) -> int:
        """How many live tasks there are (cheaper than a snapshot)."""

    @abc.abstractmethod
    def stack(self, task_id: int) -> list[FrameInfo]:
        """The await stack of one task, outermost first; raises UnknownTask."""

    @abc.abstractmethod
    def current_task_id(self) -> int | None:
        """The task the loop is running right now (the blocker, if blocked)."""

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

        Runs in a monitor worker thread, never in the server's event loop:
        it blocks for up to *timeout* seconds (default: ``hop_timeout``).  If the loop does not get to
        *fn* in time, *fn* is withdrawn (it will not run later by surprise) and
        :class:`LoopUnresponsive` is raised.
        """
        if threading.get_ident() == self.loop_thread_id():
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run_in_loop() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - delivered to the caller
                future.set_exception(exc)

        if timeout is None:
            timeout = self.hop_timeout
        self.call_soon(run_in_loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.cancel():
                raise LoopUnresponsive(
                    f"the event loop did not respond within {timeout:g} s (is it blocked?)"
                ) from None
            return future.result()

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


#: Work items between voluntary GIL releases in the monitor's long loops.
GIL_YIELD_EVERY = 256


def yielding(items: Iterable[T], every: int = GIL_YIELD_EVERY) -> Iterator[T]:
    """Iterate, briefly releasing the GIL every *every* items.

    A CPU-bound monitor thread otherwise keeps the GIL for the whole switch
    interval (5 ms) each time, and the app's loop waits that long at every
    turn; ``time.sleep(0)`` hands the GIL to a waiting thread at once.
    """
    for index, item in enumerate(items):
        if index % every == every - 1:
            time.sleep(0)
        yield item


def sorted_by_id(items: Iterable[T]) -> Iterator[T]:
    """``sorted(items, key=id)`` without one long GIL hold.

    Sorting 100k objects is a single ~20 ms C call, during which the app's
    loop cannot run; sorted chunks merged by a Python generator give the GIL
    back between elements.
    """
    chunk_size = 8192
    pending = list(items)
    chunks = [sorted(pending[i : i + chunk_size], key=id) for i in range(0, len(pending), chunk_size)]
    return heapq.merge(*chunks, key=id)


if TYPE_CHECKING:
    from ._tracing import Canceller, EndedTask, TaskRecord

_BACKEND_MODULES = {"asyncio": "aiomonitor.backends.asyncio", "trio": "aiomonitor.backends.trio"}


def get_backend_class(name: str) -> type[Backend]:
    """Import a backend lazily: ``import aiomonitor`` must not import trio."""
    try:
        module = importlib.import_module(_BACKEND_MODULES[name])
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose from {sorted(_BACKEND_MODULES)}") from None
    backend: type[Backend] = module.BACKEND
    return backend
