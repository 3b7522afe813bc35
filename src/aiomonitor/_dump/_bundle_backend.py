"""A bundle's tasks behind the backend interface: every read-only command runs on it.

Nothing here runs: there is no loop to enter, so whatever would change the
process (cancel, the console) is refused, and the loop's health is what the
bundle recorded (``_replay``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Any

from ..backends import (
    Backend,
    Canceller,
    CancelOutcome,
    EndedTask,
    FrameInfo,
    LoopUnresponsive,
    NotCancellable,
    Submission,
    TaskRecord,
    TaskSnapshot,
    UnknownTask,
    Wait,
)
from ._reading import Bundle

#: Why nothing can be changed: said by every refusal.
A_RECORD = "this is a bundle, a record of the past: nothing in it runs"


class BundleBackend(Backend):
    """The tasks of one bundle, as they were when it was taken."""

    def __init__(self, bundle: Bundle) -> None:
        self._bundle = bundle
        self.framework = bundle.framework
        self.traced = bundle.traced
        self.keeps_history = bundle.keeps_history
        self.timed = bundle.timed
        self._by_id = {task.id: task for task in bundle.tasks}

    def console_namespace(self) -> dict[str, Any]:
        return {}

    def snapshot(self) -> Iterator[TaskSnapshot]:
        return iter(self._bundle.tasks)

    def snapshot_one(self, task_id: int) -> TaskSnapshot:
        try:
            return self._by_id[task_id]
        except KeyError:
            raise UnknownTask(f"no task with id {task_id}") from None

    def task_count(self) -> int:
        return len(self._bundle.tasks)

    def stack(self, task_id: int) -> list[FrameInfo]:
        self.snapshot_one(task_id)
        return list(self._bundle.stacks.get(task_id, []))

    def details(self) -> Iterator[tuple[int, list[FrameInfo], TaskRecord | None, Canceller | None]]:
        for task in self._bundle.tasks:
            yield task.id, self.stack(task.id), self.record(task.id), self.canceller(task.id)

    def record(self, task_id: int) -> TaskRecord | None:
        return self._bundle.records.get(task_id)

    def canceller(self, task_id: int) -> Canceller | None:
        return self._bundle.cancellers.get(task_id)

    def history(self) -> list[EndedTask]:
        return list(self._bundle.history)

    def await_edges(self) -> list[tuple[int, int, str]]:
        return list(self._bundle.await_edges)

    def waits(self, task_ids: Collection[int] | None = None) -> list[Wait]:
        if task_ids is None:
            return list(self._bundle.waits)
        wanted = set(task_ids)
        return [wait for wait in self._bundle.waits if wait.task_id in wanted]

    def suspect_waits(self) -> list[Wait]:
        return list(self._bundle.suspects)

    def cancelling(self) -> list[tuple[int, float | None]]:
        return list(self._bundle.cancelling)

    def trace_totals(self) -> tuple[int, int | None] | None:
        return self._bundle.trace_totals

    def current_task_id(self) -> int | None:
        return self._bundle.running_task

    def loop_thread_id(self) -> int | None:
        return None

    def loop_thread_stack(self) -> list[FrameInfo]:
        return list(self._bundle.thread_stack)

    def call_soon(self, callback: Callable[[], None]) -> None:
        raise LoopUnresponsive(A_RECORD)

    def heartbeat(self, interval: float, beat: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def cancel(self, task_id: int, grace: float) -> CancelOutcome:
        raise NotCancellable(A_RECORD)

    def submit(self, async_fn: Callable[[], Awaitable[Any]]) -> Submission:
        raise LoopUnresponsive(A_RECORD)
