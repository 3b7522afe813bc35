"""Where code is, in the short form people read: ``app.py:31 in main``.  Pure.

Shared by the query layer (filters match on it) and every renderer.
"""

from __future__ import annotations

import functools
import os

from ..backends import FrameInfo

__all__ = ("format_location", "short_path")


@functools.lru_cache(maxsize=1024)
def short_path(filename: str) -> str:
    """A path people can read: relative to the cwd or to site-packages."""
    marker = f"{os.sep}site-packages{os.sep}"
    if marker in filename:
        return filename.rsplit(marker, 1)[1]
    stdlib = os.path.dirname(os.__file__) + os.sep
    if filename.startswith(stdlib):
        return filename[len(stdlib) :]
    cwd = os.getcwd() + os.sep
    return filename[len(cwd) :] if filename.startswith(cwd) else filename


@functools.lru_cache(maxsize=8192)
def format_location(frame: FrameInfo | None) -> str:
    if frame is None:
        return "-"
    return f"{short_path(frame.filename)}:{frame.lineno} in {frame.name}"
