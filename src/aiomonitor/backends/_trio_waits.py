"""What trio tasks wait for: locks, semaphores, limiters, events, channels.

As for asyncio (``_asyncio_waits``), the innermost frame of a parked task's
await chain that runs a primitive's method names what it waits on.  Unlike
asyncio, trio's ``Lock`` records its owner and ``CapacityLimiter`` its
borrowers: those holders are known, not inferred.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import FrameType
from typing import Any

import trio

from .._gil._passes import yielding
from ._records import Holder, Wait
from ._waits import WaitDescriber, app_location, holders_by_evidence, method_codes, primitive_in_chain, type_label

KINDS = method_codes(
    [
        (trio._sync._LockImpl, trio._sync._LockImpl.acquire, ""),  # Lock and StrictFIFOLock
        (trio.Semaphore, trio.Semaphore.acquire, ""),
        (trio.CapacityLimiter, trio.CapacityLimiter.acquire, ""),
        (trio.CapacityLimiter, trio.CapacityLimiter.acquire_on_behalf_of, ""),
        (trio.Condition, trio.Condition.wait, ""),
        (trio.Event, trio.Event.wait, ""),
        (trio.MemoryReceiveChannel, trio.MemoryReceiveChannel.receive, ".receive"),
        (trio.MemorySendChannel, trio.MemorySendChannel.send, ".send"),
        (None, trio.sleep_forever, ""),  # trio.sleep and sleep_until end here
    ]
)
LOCK_LIKE = (trio._sync._LockImpl, trio.Semaphore, trio.CapacityLimiter)
#: The code of trio's run loop, whose local ``task`` is the task it steps.
_UNROLLED_RUN_CODE = getattr(getattr(trio._core._run, "unrolled_run", None), "__code__", None)


def running_task(thread_frames: list[FrameType]) -> tuple[int, str] | None:
    """(id, name) of the task trio's loop steps, from the loop thread's stack.

    Asked while the loop is stuck: the runner names the task it steps in a
    local of its own frame, where a walk of 100k tasks would take the GIL
    from the stuck loop.
    """
    for frame in thread_frames:
        if frame.f_code is _UNROLLED_RUN_CODE:
            task = frame.f_locals.get("task")
            if isinstance(task, trio.lowlevel.Task):
                return id(task), task.name
    return None


def primitive_of(coro: Any) -> tuple[str, Any] | None:
    """(kind, the primitive) the innermost primitive coroutine of *coro*'s
    await chain waits on, if any."""
    found = primitive_in_chain(coro, KINDS)[1]
    if found is None:
        return None
    suffix, obj = found
    if obj is None:
        return "trio.sleep", None
    return type_label("trio", obj) + suffix, obj


def owners(obj: Any) -> list[Any]:
    """The tasks trio itself records as holding *obj* (a Lock's owner, a limiter's borrowers)."""
    if isinstance(obj, trio._sync._LockImpl):
        owner = getattr(obj, "_owner", None)
        return [] if owner is None else [owner]
    if isinstance(obj, trio.CapacityLimiter):
        return [b for b in list(getattr(obj, "_borrowers", ())) if isinstance(b, trio.lowlevel.Task)]
    return []


def is_held(obj: Any) -> bool:
    if isinstance(obj, trio._sync._LockImpl):
        return getattr(obj, "_owner", None) is not None
    if isinstance(obj, trio.Semaphore):
        bound = getattr(obj, "_max_value", None)
        return obj._value <= 0 or (bound is not None and obj._value < bound)
    if isinstance(obj, trio.CapacityLimiter):
        return bool(getattr(obj, "_borrowers", ()))
    return False


def detail_of(obj: Any) -> str:
    """A few words on a primitive's state: attribute reads only."""
    lot = getattr(obj, "_lot", None)
    waiting = len(getattr(lot, "_parked", ()) or ())
    if isinstance(obj, trio._sync._LockImpl):
        return f"{'locked' if obj._owner is not None else 'free'}, {waiting} waiting"
    if isinstance(obj, trio.Semaphore):
        bound = getattr(obj, "_max_value", None)
        return f"{obj._value}{'' if bound is None else f' of {bound}'} free, {waiting} waiting"
    if isinstance(obj, trio.CapacityLimiter):
        return f"{len(obj._borrowers)} of {obj._total_tokens} borrowed, {waiting} waiting"
    if isinstance(obj, trio.Event):
        return "set" if obj.is_set() else "not set"
    state = getattr(obj, "_state", None)
    if state is not None and hasattr(state, "data"):
        return f"{len(state.data)} of {state.max_buffer_size} buffered"
    return ""


def waits(
    tasks: list[trio.lowlevel.Task],
    frames_of: Callable[[trio.lowlevel.Task], list[FrameType]],
    task_ids: Collection[int] | None,
    suspects_only: bool = False,
) -> list[Wait]:
    """What the parked ones of *tasks* (those of *task_ids*, or all) wait for;
    or only the waits a diagnosis could report, on locks (``Backend.suspect_waits``)."""
    wanted = None if task_ids is None else set(task_ids)
    found: list[tuple[int, str, Any, list[FrameType]]] = []
    for task in yielding(tasks):
        if (wanted is None or id(task) in wanted) and not getattr(task.coro, "cr_running", False):
            kind_and_obj = primitive_of(task.coro)
            if kind_and_obj is not None and (not suspects_only or isinstance(kind_and_obj[1], LOCK_LIKE)):
                found.append((id(task), *kind_and_obj, frames_of(task)))
    taken = {id(obj): obj for _, _, obj, _ in found if isinstance(obj, LOCK_LIKE) and is_held(obj)}
    inferred: dict[int, list[Holder]] = {}
    if any(not owners(obj) for obj in taken.values()):  # a semaphore: holders by evidence
        inferred = holders_by_evidence(((id(t), frames_of(t)) for t in yielding(tasks)), taken)
    result = []
    describer = WaitDescriber(detail_of)
    for task_id, kind, obj, frames in found:
        holders: tuple[Holder, ...] = ()
        if id(obj) in taken:
            known = owners(obj)
            holders = tuple(Holder(id(o), "owner", app_location(frames_of(o)), inferred=False) for o in known)
            holders = holders or tuple(inferred.get(id(obj), ()))
        primitive = obj is not None
        result.append(
            Wait(
                task_id,
                kind,
                id(obj),
                describer.binding(obj, frames, app_location(frames)) if primitive else None,
                app_location(frames),
                describer.detail(obj) if primitive else "",
                holders,
            )
        )
    return result
