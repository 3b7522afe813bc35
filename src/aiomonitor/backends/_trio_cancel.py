"""Cancelling one trio task that has no cancel scope of its own.

trio cancels scopes, not tasks: cancelling the scope a task runs in cancels
its siblings too, and a scope of its own at every spawn (``cancellable_tasks``)
doubles the cost of spawning a task.  What trio does when a scope is
cancelled, done for one task:

* The task is parked at a checkpoint (``wait_task_rescheduled``), with the
  abort function of whatever it waits for.  Calling it through the task's
  ``_attempt_abort`` is how trio's own cancellation reaches a task: the wait
  is withdrawn cleanly (a lock's queue forgets the task) and the task
  resumes with ``trio.Cancelled`` raised where it waits.  Its ``finally``
  and ``except trio.Cancelled`` blocks run, its own nurseries cancel their
  children, as on any cancellation.
* A ``Cancelled`` that reaches the top of the task would end it with an
  error, and its nursery would cancel the siblings.  So the task's coroutine
  is first put inside ``EndingCoroutine`` (``_ending``), which turns that
  ``Cancelled`` into a plain return.  trio reads ``task.coro`` each time it
  resumes the task (as the step-timing proxy relies on too).

What it won't do, each said in one line by ``cancel``: cancel a task inside
a shielded scope (trio delivers no cancellation there), one that is not
parked right now (it is about to run: try again), or reach into a trio
without these internals (then ``cancellable_tasks=True`` does it with public
API only).  ``_attempt_abort``, ``_abort_func``, ``_cancel_status`` and
``Cancelled._create`` are trio's private names, stable since trio 0.11.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from ._ending import EndingCoroutine


def _only_cancelled(exc: BaseException) -> bool:
    """A ``Cancelled``, or a group of nothing else (a nursery inside the task
    passes it on so); by its ``exceptions``, as 3.10 has no ExceptionGroup built in."""
    if isinstance(exc, trio.Cancelled):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(map(_only_cancelled, inner))


def _cancelled() -> BaseException:
    create: Any = getattr(trio.Cancelled, "_create")  # noqa: B009 - private, see the notes above
    try:
        return create(source="explicit", reason="cancelled by aiomonitor")  # type: ignore[no-any-return]
    except TypeError:  # a trio before cancel reasons
        return create()  # type: ignore[no-any-return]


def _shielded(task: trio.lowlevel.Task) -> bool:
    """Whether a scope between the task's checkpoint and its nursery is shielded."""
    nursery = task.parent_nursery
    boundary = None if nursery is None else getattr(nursery, "_cancel_status", None)
    status = getattr(task, "_cancel_status", None)
    while status is not None and status is not boundary:
        if status._scope.shield:
            return True
        status = status.parent
    return False


def cancel_alone(task: trio.lowlevel.Task, ended: Callable[[str], None]) -> str | None:
    """In the trio thread: cancel *task* alone, as above; None when asked, else why not (one line).

    *ended* is called once with how it ended (``"cancelled"``...), in the trio thread.
    """
    if not hasattr(task, "_attempt_abort") or not hasattr(task, "_abort_func"):
        return "this trio version has no way in; start the monitor with cancellable_tasks=True"
    if isinstance(task.coro, EndingCoroutine):
        return "it is being cancelled already"
    if task._abort_func is None:
        return "it is not parked at a checkpoint right now (it is about to run): try again"
    if _shielded(task):
        return "it waits inside a shielded cancel scope, where trio delivers no cancellation"
    task.coro = EndingCoroutine(task.coro, _only_cancelled, ended)  # type: ignore[assignment]

    def raise_cancel() -> None:
        raise _cancelled()

    task._attempt_abort(raise_cancel)
    return None
