"""Snapshots to text: the ``ps`` table and traceback-style stacks.  Pure.

Runs in worker threads, after the snapshot was taken: the cost of formatting
100k rows is paid here, never in the monitored loop's thread.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Iterable, Sequence

from .backends import FrameInfo, TaskSnapshot

#: Columns may shrink to this before the table is allowed to overflow.
_MIN_COLUMN = 8
#: Without a known terminal width, no column grows beyond this.
_MAX_COLUMN = 60
_GAP = "  "


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


def format_location(frame: FrameInfo | None) -> str:
    if frame is None:
        return "-"
    return f"{short_path(frame.filename)}:{frame.lineno} in {frame.name}"


def ellipsize(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None) -> str:
    """Aligned columns; the widest columns shrink (with …) to fit *width*."""
    widths = [len(h) for h in headers]
    for column, cells in enumerate(zip(*rows, strict=False) if rows else ()):
        widths[column] = max(widths[column], max(map(len, cells)))
    limit = width if width else sys.maxsize
    if not width:
        widths = [min(w, _MAX_COLUMN) for w in widths]
    while sum(widths) + len(_GAP) * (len(widths) - 1) > limit:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= _MIN_COLUMN:
            break
        widths[widest] -= 1
    last = len(widths) - 1

    def line(cells: Sequence[str]) -> str:
        parts = [
            ellipsize(cell, w) if i == last else ellipsize(cell, w).ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return _GAP.join(parts)

    out = [line(headers), _GAP.join("-" * w for w in widths)]
    out.extend(map(line, rows))
    return "\n".join(out) + "\n"


PS_HEADERS = ("Task ID", "State", "Name", "Coroutine", "Location")


def ps_rows(tasks: Iterable[TaskSnapshot]) -> list[tuple[str, ...]]:
    """Table rows; a task listed after its parent is indented under it (trio's tree)."""
    depths: dict[int, int] = {}
    rows: list[tuple[str, ...]] = []
    for t in tasks:
        depth = depths[t.id] = depths[t.parent_id] + 1 if t.parent_id in depths else 0
        rows.append((str(t.id), t.state, "  " * depth + t.name, t.coro, format_location(t.location)))
    return rows


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_stack(frames: Sequence[FrameInfo]) -> str:
    """Frames the way Python prints a traceback, with source lines."""
    out = []
    for frame in frames:
        out.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n')
        source = linecache.getline(frame.filename, frame.lineno).strip()
        if source:
            out.append(f"    {source}\n")
    return "".join(out)
