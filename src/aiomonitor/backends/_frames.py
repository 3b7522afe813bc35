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
from types import FrameType
from typing import Any

from ._records import FrameInfo
from ._timing import TimedCoroutine

_MAX_CHAIN = 256  # a cycle-proof bound; real await chains are a few dozen deep

_LIBRARY_DIRS = tuple(
    {os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {sysconfig.get_paths()[key] + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
_PACKAGE_MARKERS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


@functools.lru_cache(maxsize=4096)
def is_library(filename: str) -> bool:
    # Cached: a ps of 100k tasks asks about the same few files 300k times.
    return filename.startswith(_LIBRARY_DIRS) or any(m in filename for m in _PACKAGE_MARKERS)


def code_name(frame: FrameType) -> str:
    code = frame.f_code
    return getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+


def user_coro_name(frames: list[FrameType], fallback: str) -> str:
    """The outermost coroutine in user code: ``parked``, not anyio's task wrapper."""
    for frame in frames:
        if not is_library(frame.f_code.co_filename):
            return code_name(frame)
    return fallback


def user_location(frames: list[FrameType]) -> FrameInfo | None:
    """The innermost frame outside libraries, else the innermost frame."""
    for frame in reversed(frames):
        if not is_library(frame.f_code.co_filename):
            return FrameInfo.from_frame(frame)
    return FrameInfo.from_frame(frames[-1]) if frames else None


def await_chain(coro: Any) -> list[FrameType]:
    """Frames of a coroutine and of what it awaits, outermost first.

    A plain loop on exact types: it runs once per task on every ``ps``
    (trio's ``Task.iter_await_frames`` is a generator of pairs, several
    times slower at 100k tasks).
    """
    frames: list[FrameType] = []
    while coro is not None and len(frames) < _MAX_CHAIN:
        kind = type(coro)
        if kind is TimedCoroutine:  # trace_timing's proxy: look through it
            coro = coro.coro
            continue
        if kind is types.CoroutineType:
            frame, coro = coro.cr_frame, coro.cr_await
        elif kind is types.GeneratorType:
            frame, coro = coro.gi_frame, coro.gi_yieldfrom
        elif kind is types.AsyncGeneratorType:
            frame, coro = coro.ag_frame, coro.ag_await
        else:  # a Future, or a coroutine implemented in C/Cython: no frames
            break
        if frame is None:  # finished
            break
        frames.append(frame)
    return frames
