"""What trio tasks wait for: locks, semaphores, limiters, events, channels.

As for asyncio (``_asyncio_waits``), the innermost frame of a parked task's
await chain that runs a primitive's method names what it waits on.  Unlike
asyncio, trio's ``Lock`` records its owner and ``CapacityLimiter`` its
borrowers: those holders are known, not inferred.
"""

from __future__ import annotations

from types import FrameType
from typing import Any

import trio

from ._waits import method_codes, primitive_frame, type_label

KINDS = method_codes(
    [
        (trio._sync._LockImpl.acquire, ""),  # Lock and StrictFIFOLock
        (trio.Semaphore.acquire, ""),
        (trio.CapacityLimiter.acquire, ""),
        (trio.CapacityLimiter.acquire_on_behalf_of, ""),
        (trio.Condition.wait, ""),
        (trio.Event.wait, ""),
        (trio.MemoryReceiveChannel.receive, ".receive"),
        (trio.MemorySendChannel.send, ".send"),
        (trio.sleep_forever, ""),  # trio.sleep and sleep_until end here
    ]
)
_SLEEP_CODE = trio.sleep_forever.__code__
LOCK_LIKE = (trio._sync._LockImpl, trio.Semaphore, trio.CapacityLimiter)


def primitive_of(frames: list[FrameType]) -> tuple[str, Any] | None:
    """(kind, the primitive) the innermost primitive frame waits on, if any."""
    found = primitive_frame(frames, KINDS)
    if found is None:
        return None
    suffix, obj = found
    if obj is None or any(frame.f_code is _SLEEP_CODE for frame in frames[-3:]):
        return "sleep", None
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
