"""Snapshots to text: the ``ps`` table and traceback-style stacks.  Pure.

Runs in worker threads, after the snapshot was taken: the cost of formatting
100k rows is paid here, never in the monitored loop's thread.
"""

from __future__ import annotations

import linecache
import sys
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

from ._diagnosis import describe_holders, wait_target
from ._locations import format_location
from ._style import PLAIN, Style
from .backends import Canceller, FrameInfo, TaskRecord, TaskSnapshot, Wait, yielding

#: Columns may shrink to this before the table is allowed to overflow.
_MIN_COLUMN = 8
#: The width of a client that did not say (plain telnet, nc): a classic terminal.
DEFAULT_WIDTH = 80
_GAP = "  "


def ellipsize(text: str, width: int) -> str:
    """*text* shortened to *width* with … in the middle, keeping more of the
    end: a location's ``file.py:31 in main``, a qualified name's last part."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 3
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def _fit(cell: str, width: int) -> str:
    """The cell padded, or shortened with …, to exactly *width*."""
    return cell.ljust(width) if len(cell) <= width else ellipsize(cell, width)


Columns = list[list[str]]


def _widest(column: Sequence[str], chunk: int = 8192) -> int:
    """``max(map(len, column))`` in pieces: over 100k cells one C call holds the GIL ~5 ms."""
    return max((max(map(len, column[i : i + chunk])) for i in range(0, len(column), chunk)), default=0)


def table_lines(
    headers: Sequence[str],
    columns: Columns,
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    keep: Collection[int] = (0,),
) -> Iterator[str]:
    """Aligned columns, line by line; the widest columns shrink (with … in the
    middle) to fit *width* (None: never shrink).  Columns in *keep* (task ids,
    which people copy) and the *state_column* are never shortened.

    Takes columns of plain strings, not rows: strings are not tracked by the
    cyclic GC, so a 100k-row table adds five tracked lists, not 100k tuples
    (see Backend.snapshot).  A generator, so output is written in pieces: one
    giant join or encode would hold the GIL long enough to stall the app.
    With a colour *style*, cells of *state_column* are coloured after padding.
    """
    needed = [max(len(header), _widest(column)) for header, column in zip(headers, columns, strict=True)]
    widths = list(needed)
    limit = width if width else sys.maxsize
    # Task ids (people copy them) and states (short words, maybe coloured) stay whole.
    kept = {*keep, state_column}
    shrinkable = [i for i in range(len(widths)) if i not in kept]
    # The last column (a location, mostly) says the most and is shrunk last:
    # it counts half its width when choosing which column gives up a cell.
    last_column = len(widths) - 1

    def claim(i: int) -> float:
        return widths[i] / 2 if i == last_column else widths[i]

    while shrinkable and sum(widths) + len(_GAP) * (len(widths) - 1) > limit:
        widest = max(shrinkable, key=claim)
        if widths[widest] <= _MIN_COLUMN:
            break
        widths[widest] -= 1
    *padded, last = widths
    # Coloured cells arrive padded already: escape codes must not count as width.
    styled = state_column if style.colour and state_column is not None and state_column < len(padded) else None
    # Fast path: when nothing needs shortening, one %-format does a row in C
    # (several times faster than str.format, and no Python call per row).
    fits = all(w >= need for w, need in zip(widths, needed, strict=True))
    row_format = _GAP.join("%s" if i == styled else f"%-{w}s" for i, w in enumerate(padded)) + _GAP + "%s"

    def line(cells: Sequence[str]) -> str:
        if fits:
            return row_format % tuple(cells)
        *first, final = cells
        parts = [cell if i == styled else _fit(cell, w) for i, (cell, w) in enumerate(zip(first, padded, strict=True))]
        parts.append(final if len(final) <= last else ellipsize(final, last))
        return _GAP.join(parts)

    header_cells = list(headers)
    if styled is not None:
        header_cells[styled] = _fit(header_cells[styled], padded[styled])
    yield style.heading(line(header_cells))
    yield style.rule(_GAP.join("-" * w for w in widths))
    rows: Iterable[Sequence[str]] = zip(*columns, strict=True)
    if styled is not None:
        rows = _with_styled_states(rows, styled, padded[styled], style)
    yield from map(row_format.__mod__ if fits else line, yielding(rows))


def _with_styled_states(rows: Iterable[Sequence[str]], index: int, width: int, style: Style) -> Iterator[Sequence[str]]:
    """Rows whose cell *index* is padded (or shortened) to *width*, then coloured.

    Padding first keeps escape codes out of the width; states are few, so
    each distinct one is styled once.
    """
    styled: dict[str, str] = {}
    for row in rows:
        cell = row[index]
        if cell not in styled:
            styled[cell] = style.state(_fit(cell, width))
        yield (*row[:index], styled[cell], *row[index + 1 :])


def rows_to_columns(rows: Sequence[Sequence[str]], count: int) -> Columns:
    return [[row[i] for row in rows] for i in range(count)]


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    keep: Collection[int] = (0,),
) -> str:
    """A small table (``who``, ``top``, ``ended``, tests) as one string."""
    columns = rows_to_columns(rows, len(headers))
    return "".join(line + "\n" for line in table_lines(headers, columns, width, style, state_column, keep))


def batched_text(lines: Iterable[str], size: int = 1000) -> Iterator[str]:
    """Lines joined into newline-terminated chunks of *size* lines."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield "\n".join(batch) + "\n"
            batch.clear()
    if batch:
        yield "\n".join(batch) + "\n"


PS_HEADERS = ("Task ID", "State", "Name", "Coroutine", "Location")
TRACE_HEADERS = ("Age", "Created at")
TIMING_HEADERS = ("Steps", "Busy", "Max step")


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def ps_columns(tasks: Iterable[TaskSnapshot], traced: bool = False, timed: bool = False) -> Columns:
    """The ps table's columns; a task listed after its parent is indented under it (trio's tree)."""
    ids: list[str] = []
    states: list[str] = []
    names: list[str] = []
    coros: list[str] = []
    locations: list[str] = []
    ages: list[str] = []
    creations: list[str] = []
    steps: list[str] = []
    busy: list[str] = []
    longest: list[str] = []
    depths: dict[int, int] = {}
    now = time.monotonic()
    for t in tasks:
        depth = depths[t.id] = depths[t.parent_id] + 1 if t.parent_id in depths else 0
        ids.append(str(t.id))
        states.append(t.state)
        names.append("  " * depth + t.name if depth else t.name)
        coros.append(t.coro)
        locations.append(format_location(t.location))
        if traced:
            ages.append("-" if t.created_at is None else f"{now - t.created_at:.1f}s")
            creations.append(format_location(t.created))
        if timed:
            steps.append("-" if t.steps is None else str(t.steps))
            busy.append(seconds_text(t.busy))
            longest.append(seconds_text(t.longest_step))
    extra = ([ages, creations] if traced else []) + ([steps, busy, longest] if timed else [])
    return [ids, states, names, coros, locations, *extra]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_stack(frames: Sequence[FrameInfo], style: Style = PLAIN) -> str:
    """Frames the way Python prints a traceback, with source lines."""
    out = []
    for frame in frames:
        filename, lineno, name = style.source(frame.filename), style.source(str(frame.lineno)), style.source(frame.name)
        out.append(f'  File "{filename}", line {lineno}, in {name}\n')
        source = linecache.getline(frame.filename, frame.lineno).strip()
        if source:
            out.append(f"    {source}\n")
    return "".join(out)


def wait_lines(wait: Wait, names: Mapping[int, str]) -> str:
    """``where``'s account of what a task waits for and who holds it."""
    where = "" if wait.at is None else f" at {format_location(wait.at)}"
    out = [f"Waits{where} for {wait_target(wait, names)}\n"]
    holders = describe_holders(wait, names)
    if holders:
        out.append(f"  {holders[0].upper()}{holders[1:]}\n")
    elif wait.detail.startswith("locked"):
        out.append("  Held by a task not found (one that took it without `async with`?)\n")
    if wait.orphaned:
        out.append("  Nothing else refers to what it waits on: nothing can wake it.\n")
    return "".join(out)


def describe_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def creation_lines(record: TaskRecord | None, names: Mapping[int, str]) -> str:
    """'Created by' chain, root first: each task, by id and name, and where it was made."""
    if record is None:
        return ""
    chain = record.chain()
    out = ["Creation chain (oldest first):\n"]
    if chain[0].depth:
        out.append(f"  … {chain[0].depth} more creator(s) before these\n")
    for link in chain:
        name = names.get(link.task_id, "ended")
        out.append(f"  task {link.task_id} ({name}) created at {format_location(link.created)}\n")
    return "".join(out)


def canceller_lines(heading: str, canceller: Canceller | None, style: Style) -> str:
    """Who called cancel(): a task, or code outside any task, and its stack."""
    if canceller is None:
        return ""
    who = (
        f"task {canceller.task_id} ({canceller.task_name})"
        if canceller.task_id is not None
        else "code outside any task (a callback)"
    )
    return f"{heading} {who}; most recent call last:\n" + format_stack(canceller.stack, style)
