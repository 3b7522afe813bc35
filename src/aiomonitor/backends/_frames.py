"""Choosing the frame that says where a task "is", shared by the backends.

The innermost frame of a waiting task is nearly always inside the framework
or a library (``asyncio/tasks.py in sleep``).  What a user wants in ``ps`` is
the innermost frame of *their* code, so library frames are skipped.
"""

from __future__ import annotations

import functools
import os
import sysconfig
import types
from types import CodeType, FrameType
from typing import Any

from ._ending import EndingCoroutine
from ._records import FrameInfo
from ._timing import TimedCoroutine

MAX_CHAIN = 256  # a cycle-proof bound; real await chains are a few dozen deep

_LIBRARY_DIRS = tuple(
    {os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {sysconfig.get_paths()[key] + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_PACKAGE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


@functools.lru_cache(maxsize=4096)
def is_library(filename: str) -> bool:
    # Cached: a ps of 100k tasks asks about the same few files 300k times.
    return filename.startswith(_LIBRARY_DIRS) or any(m in filename for m in _PACKAGE_MARKERS)


#: Per code object: (the code, whether it is library code, its qualified
#: name).  Keyed by id(code), as FrameInfo's memo (hashing a code object
#: hashes its whole content); the entry keeps the code alive, so the id
#: cannot be reused.  A pure memo, bounded, shared harmlessly.
_CODE_FACTS: dict[int, tuple[CodeType, bool, str]] = {}
_CODE_FACTS_SIZE = 20_000


def code_facts(code: CodeType) -> tuple[CodeType, bool, str]:
    facts = _CODE_FACTS.get(id(code))
    if facts is None:
        if len(_CODE_FACTS) >= _CODE_FACTS_SIZE:
            _CODE_FACTS.clear()
        facts = (code, is_library(code.co_filename), getattr(code, "co_qualname", code.co_name))
        _CODE_FACTS[id(code)] = facts
    return facts


def describe_chain(frames: list[FrameType], fallback: str) -> tuple[str, FrameInfo | None]:
    """(coroutine name, location) of an await chain, in one pass.

    The name is the outermost coroutine in user code (``parked``, not
    anyio's task wrapper); the location the innermost frame outside
    libraries, else the innermost frame.  Runs once per task on every ``ps``:
    one loop and a memo per code object, not a cached call per frame.
    """
    name: str | None = None
    innermost_user: FrameType | None = None
    for frame in frames:
        facts = _CODE_FACTS.get(id(frame.f_code)) or code_facts(frame.f_code)
        if not facts[1]:
            if name is None:
                name = facts[2]
            innermost_user = frame
    where = innermost_user if innermost_user is not None else (frames[-1] if frames else None)
    return (fallback if name is None else name), (None if where is None else FrameInfo.from_frame(where))


def await_chain(coro: Any) -> list[FrameType]:
    """Frames of a coroutine and of what it awaits, outermost first.

    A plain loop on exact types: it runs once per task on every ``ps``
    (trio's ``Task.iter_await_frames`` is a generator of pairs, several
    times slower at 100k tasks).
    """
    frames: list[FrameType] = []
    while coro is not None and len(frames) < MAX_CHAIN:
        kind = type(coro)
        if kind is TimedCoroutine or kind is EndingCoroutine:  # our proxies: looked through
            coro = coro.coro
            continue
        # What a running one awaits is not read: see _chains._next_level.
        if kind is types.CoroutineType:
            frame, coro = coro.cr_frame, None if coro.cr_running else coro.cr_await
        elif kind is types.GeneratorType:
            frame, coro = coro.gi_frame, None if coro.gi_running else coro.gi_yieldfrom
        elif kind is types.AsyncGeneratorType:
            frame, coro = coro.ag_frame, None if coro.ag_running else coro.ag_await
        else:  # a Future, or a coroutine implemented in C/Cython: no frames
            break
        if frame is None:  # finished
            break
        frames.append(frame)
    return frames
