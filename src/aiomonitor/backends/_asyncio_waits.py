"""What asyncio tasks wait for: locks, semaphores, events, queues, futures, tasks.

A suspended task's ``_fut_waiter`` is the future it yielded; the innermost
frame of its await chain that runs a primitive's method (``Lock.acquire``,
``Queue.get``...) says what that future stands for.  Holders of asyncio
locks are inferred (``_waits.holders_by_evidence``): asyncio keeps no owner.

**Orphaned waits.**  A task awaiting a future (or an Event) that nothing but
the task itself refers to can never be woken: the "lost waker" of other
runtimes.  Finding every referrer would need ``gc.get_referrers``, a walk of
the whole heap with the GIL held (tens of ms at 100k tasks: a stall).  The
reference count tells the same for the one object, in O(1): the references
the waiting task's frames account for (each local naming it) are taken away,
and what is left is compared with what a known-orphaned wait leaves, which is
measured once per process on a private loop (:func:`_orphan_baseline`): the
interpreter's own references (the awaiting frame's value stack, the task's
``_fut_waiter``) differ between Python versions.  Anything more means
someone else can reach it, so a referenced future is never reported; a
future reachable only through a dead object is missed, which is the safe way
to be wrong.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from types import FrameType
from typing import Any, NamedTuple

from ._frames import await_chain
from ._waits import method_codes, primitive_frame, type_label

#: The primitives' waiting methods, and what they add to the type's name.
#: BoundedSemaphore shares Semaphore's code; a Condition's acquire is its Lock's.
KINDS = method_codes(
    [
        (asyncio.Lock.acquire, ""),
        (asyncio.Semaphore.acquire, ""),
        (asyncio.Condition.wait, ""),
        (asyncio.Event.wait, ""),
        (asyncio.Queue.get, ".get"),
        (asyncio.Queue.put, ".put"),
        (getattr(getattr(asyncio, "Barrier", None), "wait", None), ""),  # Python 3.11+
        (asyncio.sleep, ""),
    ]
)
_SLEEP_CODE = asyncio.sleep.__code__

#: Kinds whose holders are sought: held across an ``async with``.
LOCK_LIKE = (asyncio.Lock, asyncio.Semaphore)

#: ``f_locals`` of a suspended frame is a dict the frame keeps before Python
#: 3.13 (PEP 667): each local naming the object then holds two references.
_LOCALS_COUNT = 1 if sys.version_info >= (3, 13) else 2


def primitive_of(frames: list[FrameType]) -> tuple[str, Any] | None:
    """(kind, the primitive) the innermost primitive frame waits on, if any."""
    found = primitive_frame(frames, KINDS)
    if found is None:
        return None
    suffix, obj = found
    if frames[-1].f_code is _SLEEP_CODE or (obj is None and suffix == ""):
        return "sleep", None
    return type_label("asyncio", obj) + suffix, obj


def detail_of(obj: Any) -> str:
    """A few words on a primitive's state: attribute reads, and the stdlib's
    own one-line getters of them (``locked()``, ``is_set()``, ``qsize()``)."""
    waiting = len(getattr(obj, "_waiters", None) or ())
    if isinstance(obj, asyncio.Lock):
        return f"{'locked' if obj.locked() else 'free'}, {waiting} waiting"
    if isinstance(obj, asyncio.BoundedSemaphore):
        return f"{obj._value} of {getattr(obj, '_bound_value', '?')} free, {waiting} waiting"
    if isinstance(obj, asyncio.Semaphore):
        return f"{obj._value} free, {waiting} waiting"
    if isinstance(obj, asyncio.Event):
        return "set" if obj.is_set() else f"not set, {waiting} waiting"
    if isinstance(obj, asyncio.Condition):
        return f"{waiting} waiting"
    if isinstance(obj, asyncio.Queue):
        bound = f" of {obj.maxsize}" if obj.maxsize > 0 else ""
        return f"{obj.qsize()}{bound} items"
    return ""


def is_held(obj: Any) -> bool:
    """Whether a lock-like primitive is taken (a lock locked, no permit left)."""
    if isinstance(obj, asyncio.Lock):
        return obj.locked()
    if isinstance(obj, asyncio.Semaphore):
        bound = getattr(obj, "_bound_value", None)
        return obj._value <= 0 or (bound is not None and obj._value < bound)
    return False


class TaskWait(NamedTuple):
    """What one task is suspended on, with its await chain."""

    kind: str
    #: The primitive, future or task waited on.
    target: Any
    frames: list[FrameType]
    #: For waits on a plain future or an Event: references to it the task's
    #: frames do not account for (compared with ``orphan_baselines``).
    unexplained: int | None


def task_wait(task: asyncio.Task[Any]) -> TaskWait | None:
    """What *task* waits on, or None if it is not suspended on anything.

    The reference counts it takes depend on this function's own locals, so
    the baselines are measured through it too (``orphan_baselines``).
    """
    waited = getattr(task, "_fut_waiter", None)
    if waited is None:
        return None
    frames = await_chain(getattr(task, "_coro", None))
    if isinstance(waited, asyncio.Task):
        return TaskWait("task", waited, frames, None)
    found = primitive_of(frames)
    if found is not None:
        kind, obj = found
        if kind == "sleep":
            return TaskWait(kind, waited, frames, None)
        unexplained = _unexplained_references(obj, frames) if isinstance(obj, asyncio.Event) else None
        return TaskWait(kind, obj, frames, unexplained)
    if getattr(waited, "_children", None) is not None:
        return TaskWait("gather", waited, frames, None)
    return TaskWait("future", waited, frames, _unexplained_references(waited, frames))


def _unexplained_references(obj: Any, frames: list[FrameType]) -> int:
    # A closure variable naming *obj* is not accounted for: its cell is
    # shared with the enclosing function, which can still reach *obj*.  Only
    # the frame's copy of it (before 3.13) is.
    # (Generator expressions: a loop variable left naming *obj* would count.)
    accounted = sum(
        _LOCALS_COUNT if name in frame.f_code.co_varnames else _LOCALS_COUNT - 1
        for frame in frames
        for name, value in frame.f_locals.items()
        if value is obj
    )
    return sys.getrefcount(obj) - accounted


def is_orphaned(wait: TaskWait) -> bool:
    """Whether nothing but the waiting task refers to what it waits on."""
    if wait.unexplained is None:
        return False
    return wait.unexplained == orphan_baselines().get(wait.kind)


@functools.cache
def orphan_baselines() -> dict[str, int]:
    """What an orphaned future and an orphaned Event leave unexplained on
    this interpreter, by kind: measured through :func:`task_wait` on a
    private loop, once per process (a fact of the interpreter, so sharing it
    between monitors is harmless).  Empty if it cannot be measured: then
    nothing is ever reported as orphaned.

    In a thread of its own: a thread that runs a loop cannot run another.
    """
    measured: dict[str, int] = {}
    thread = threading.Thread(target=lambda: measured.update(_measure_baselines()), name="aiomonitor-calibrate")
    thread.start()
    thread.join()
    return measured


def _measure_baselines() -> dict[str, int]:
    loop = asyncio.new_event_loop()
    try:

        async def lost_future() -> None:
            future = loop.create_future()
            await future

        async def lost_event() -> None:
            event = asyncio.Event()
            await event.wait()

        baselines: dict[str, int] = {}
        for make in (lost_future, lost_event):
            task = loop.create_task(make())
            loop.run_until_complete(asyncio.sleep(0))  # let it reach its wait
            wait = task_wait(task)
            if wait is not None and wait.unexplained is not None:
                baselines[wait.kind] = wait.unexplained
            del wait
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    except Exception:  # noqa: BLE001 - an interpreter we cannot measure: never report
        return {}
    finally:
        loop.close()
    return baselines if set(baselines) == {"future", "asyncio.Event"} else {}
