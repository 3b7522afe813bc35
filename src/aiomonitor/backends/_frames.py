"""Choosing the frame that says where a task "is", shared by the backends.

The innermost frame of a waiting task is nearly always inside the framework
or a library (``asyncio/tasks.py in sleep``).  What a user wants in ``ps`` is
the innermost frame of *their* code, so library frames are skipped.
"""

from __future__ import annotations

import functools
import os
import sysconfig
from types import FrameType

from . import FrameInfo

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
