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
from collections.abc import Callable, Collection
from types import FrameType
from typing import Any, NamedTuple

from .._gil._passes import release_gently, yielding
from ._frames import await_chain
from ._records import Holder, Wait
from ._waits import WaitDescriber, app_location, holders_by_evidence, method_codes, primitive_in_chain, type_label

#: The primitives' waiting methods, and what they add to the type's name.
#: BoundedSemaphore shares Semaphore's code; a Condition's acquire is its Lock's.
KINDS = method_codes(
    [
        (asyncio.Lock, asyncio.Lock.acquire, ""),
        (asyncio.Semaphore, asyncio.Semaphore.acquire, ""),
        (asyncio.Condition, asyncio.Condition.wait, ""),
        (asyncio.Event, asyncio.Event.wait, ""),
        (asyncio.Queue, asyncio.Queue.get, ".get"),
        (asyncio.Queue, asyncio.Queue.put, ".put"),
        (getattr(asyncio, "Barrier", None), getattr(getattr(asyncio, "Barrier", None), "wait", None), ""),  # 3.11+
        (None, asyncio.sleep, ""),
    ]
)

#: More than any interpreter's orphaned wait leaves unexplained (4-7 measured).
MAX_BASELINE = 16
#: More references than one task's frames could hold (it would take 500
#: locals naming the same object in one await chain): shared, not orphaned.
SURELY_SHARED = 1000

#: Kinds whose holders are sought: held across an ``async with``.
LOCK_LIKE = (asyncio.Lock, asyncio.Semaphore)

#: ``f_locals`` of a suspended frame is a dict the frame keeps before Python
#: 3.13 (PEP 667): each local naming the object then holds two references.
_LOCALS_COUNT = 1 if sys.version_info >= (3, 13) else 2


def primitive_of(coro: Any) -> tuple[list[FrameType], tuple[str, Any] | None]:
    """The await chain's frames, and (kind, the primitive) its innermost
    primitive coroutine waits on, if any."""
    frames, found = primitive_in_chain(coro, KINDS)
    if found is None:
        return frames, None
    suffix, obj = found
    if obj is None:
        return frames, ("asyncio.sleep", None)
    return frames, (type_label("asyncio", obj) + suffix, obj)


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


def _task_wait(fields: tuple[Any, ...]) -> TaskWait:
    # tuple.__new__, as TaskSnapshot's: a NamedTuple's own __new__ is a Python call.
    wait: TaskWait = tuple.__new__(TaskWait, fields)
    return wait


def task_wait(task: asyncio.Task[Any]) -> TaskWait | None:
    """What *task* waits on, or None if it is not suspended on anything.

    The reference counts it takes depend on this function's own locals, so
    the baselines are measured through it too (``orphan_baselines``).
    """
    waited = getattr(task, "_fut_waiter", None)
    if waited is None:
        return None
    frames, found = primitive_of(getattr(task, "_coro", None))
    if isinstance(waited, asyncio.Task):
        return _task_wait(("task", waited, frames, None))
    if found is not None:
        kind, obj = found
        if kind == "asyncio.sleep":
            return _task_wait((kind, waited, frames, None))
        unexplained = _unexplained_references(obj, frames) if isinstance(obj, asyncio.Event) else None
        return _task_wait((kind, obj, frames, unexplained))
    if getattr(waited, "_children", None) is not None:
        return _task_wait(("asyncio.gather", waited, frames, None))
    return _task_wait(("future", waited, frames, _unexplained_references(waited, frames)))


def _unexplained_references(obj: Any, frames: list[FrameType]) -> int:
    # Most waits are on something many refer to (a shared event, a future
    # kept in a dict): when the frames could not account for enough
    # references anyway, their locals are not read (a dict per frame before
    # 3.13, see ``primitive_in_chain``).
    if sys.getrefcount(obj) > SURELY_SHARED:  # (100k tasks waiting on one event: the common case)
        return sys.getrefcount(obj)
    capacity = sum(len(f.f_code.co_varnames) + len(f.f_code.co_cellvars) + len(f.f_code.co_freevars) for f in frames)
    if sys.getrefcount(obj) - capacity * _LOCALS_COUNT > MAX_BASELINE:
        return sys.getrefcount(obj)
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


def waits_of(
    tasks: Collection[asyncio.Task[Any]],
    task_ids: Collection[int] | None,
    everyone: Callable[[], Collection[asyncio.Task[Any]]],
    suspects_only: bool = False,
) -> list[Wait]:
    """What *tasks* (those of *task_ids*, or all) wait for, with the inferred
    holders of the locks they wait for (``Backend.waits``), sought among
    *everyone*; or only the waits a diagnosis could report
    (``Backend.suspect_waits``)."""
    wanted = None if task_ids is None else set(task_ids)
    found: list[tuple[asyncio.Task[Any], Any, TaskWait]] = []
    for task in yielding(tasks):
        if wanted is None or id(task) in wanted:
            wait = task_wait(task)
            if wait is not None and (not suspects_only or _is_suspect(wait)):
                found.append((task, getattr(task, "_fut_waiter", None), wait))
    taken = {id(w.target): w.target for _, _, w in found if isinstance(w.target, LOCK_LIKE) and is_held(w.target)}
    holders: dict[int, list[Holder]] = {}
    if taken:  # a second pass over every task: only when some task waits for a taken lock
        chains = ((id(task), await_chain(getattr(task, "_coro", None))) for task in yielding(everyone()))
        holders = holders_by_evidence(chains, taken)
        # The loop ran on meanwhile: a waiter that got its lock during the
        # pass would look like its own holder.  Only waits still the same are kept.
        found = [entry for entry in found if getattr(entry[0], "_fut_waiter", None) is entry[1]]
    describer = WaitDescriber(detail_of)
    result = [_as_wait(id(task), wait, holders, describer) for task, _, wait in found]
    release_gently(found)  # 100k entries freed in one go would hold the GIL for ms
    return result


def _is_suspect(wait: TaskWait) -> bool:
    """Whether a wait could be part of a finding: on a task or a lock, or orphaned."""
    return wait.kind == "task" or isinstance(wait.target, LOCK_LIKE) or is_orphaned(wait)


def _as_wait(task_id: int, wait: TaskWait, holders: dict[int, list[Holder]], describer: WaitDescriber) -> Wait:
    target = wait.target
    primitive = wait.kind not in ("task", "future", "asyncio.gather", "asyncio.sleep")
    at = app_location(wait.frames)
    fields = (
        task_id,
        wait.kind,
        id(target),
        describer.binding(target, wait.frames, at) if primitive else None,
        at,
        describer.detail(target) if primitive else "",
        tuple(holders.get(id(target), ())),
        id(target) if wait.kind == "task" else None,
        is_orphaned(wait),
    )
    result: Wait = tuple.__new__(Wait, fields)
    return result
