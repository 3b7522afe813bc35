"""Aligned text tables, made a column and a chunk of rows at a time.  Pure.

A 100k-row ``ps`` used to make each row with a Python call, and each cell
with another when the table was shortened to fit a terminal: 0.6 s of the
command.  Here a chunk of rows is fitted a column at a time by C-level passes
(``map`` of ``len``, a memo's ``__getitem__``, slices, ``str.ljust``); Python
runs only once per distinct value of a column that repeats its values.  Each
row is then one join of its cells, in C, and the rows of a chunk are joined
at once.

Chunks keep every C call short: one pass over 100k cells holds the GIL for
~5 ms, and the app's loop cannot take it back in the middle of a call.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Callable, Collection, Iterator, Sequence

from ._style import PLAIN, Style

#: Columns may shrink to this before the table is allowed to overflow.
MIN_COLUMN = 8
#: The width of a client that did not say (plain telnet, nc): a classic terminal.
DEFAULT_WIDTH = 80
#: Rows per chunk of text (and per C-level pass).
CHUNK_ROWS = 2048
_GAP = "  "

Columns = list[list[str]]
#: ``text[a_slice]``, typed for strings.
_sliced: Callable[[str, slice], str] = operator.getitem


def ellipsize(text: str, width: int) -> str:
    """*text* shortened to *width* with … in the middle, keeping more of the
    end: a location's ``file.py:31 in main``, a qualified name's last part."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 3
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def fit(cell: str, width: int) -> str:
    """The cell padded, or shortened with …, to exactly *width*."""
    return cell.ljust(width) if len(cell) <= width else ellipsize(cell, width)


def _widest(column: Sequence[str]) -> int:
    """``max(map(len, column))`` in chunks (see the module's docstring).

    A column that repeats a few values (a location, a state) is measured
    one distinct value at a time: a set of cells the column shares costs
    less than a ``len`` each (~20 of the ~40 ms the widths of a 100k-row
    ``ps`` took), and hashes a string once for the fitting that follows.
    """
    if not column:
        return 0
    repeats = 4 * len(set(column[:CHUNK_ROWS])) <= min(CHUNK_ROWS, len(column))
    widest = 0
    for start in range(0, len(column), CHUNK_ROWS):
        chunk = column[start : start + CHUNK_ROWS]
        widest = max(widest, max(map(len, set(chunk) if repeats else chunk)))
    return widest


def column_widths(
    headers: Sequence[str], columns: Columns, width: int | None, keep: Collection[int]
) -> tuple[list[int], list[int]]:
    """(needed, given) widths: what each column's widest cell needs, and what
    it gets so that the table fits *width* (None: never shrink).

    The widest shrinkable column gives up a cell at a time; columns in
    *keep* never shrink.  The last column (a location, mostly) says the most
    and is shrunk last: it counts half its width when choosing.
    """
    needed = [max(len(header), _widest(column)) for header, column in zip(headers, columns, strict=True)]
    given = list(needed)
    limit = width if width else sys.maxsize
    shrinkable = [i for i in range(len(given)) if i not in keep]
    last_column = len(given) - 1

    def claim(i: int) -> float:
        return given[i] / 2 if i == last_column else given[i]

    while shrinkable and sum(given) + len(_GAP) * (len(given) - 1) > limit:
        widest = max(shrinkable, key=claim)
        if given[widest] <= MIN_COLUMN:
            break
        given[widest] -= 1
    return needed, given


def table_text(
    headers: Sequence[str],
    columns: Columns,
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    keep: Collection[int] = (0,),
) -> Iterator[str]:
    """The table as newline-terminated chunks: heading, rule, then rows.

    Columns shrink (with … in the middle) to fit *width* (None: never).
    Columns in *keep* (task ids, which people copy) and the *state_column*
    are never shortened; with a colour *style*, the state cells are
    coloured after padding, so escape codes never count as width.

    Takes columns of plain strings, not rows: strings are not tracked by the
    cyclic GC, so a 100k-row table adds a few tracked lists, not 100k tuples.
    """
    unshortened = {*keep} if state_column is None else {*keep, state_column}
    needed, given = column_widths(headers, columns, width, unshortened)
    last = len(given) - 1
    styled = state_column if style.colour and state_column is not None and state_column < last else None
    heading = _GAP.join([*map(fit, headers[:last], given[:last]), *(ellipsize(h, given[last]) for h in headers[last:])])
    yield style.heading(heading) + "\n" + style.rule(_GAP.join("-" * w for w in given)) + "\n"
    fitters = [
        _ColumnFitter(given[i], given[i] < needed[i], i != last, style.state if i == styled else None)
        for i in range(len(columns))
    ]
    for start in range(0, len(columns[0]) if columns else 0, CHUNK_ROWS):
        fitted = [fitter(column[start : start + CHUNK_ROWS]) for fitter, column in zip(fitters, columns, strict=True)]
        yield "\n".join(map(_GAP.join, zip(*fitted, strict=True))) + "\n"


class _ColumnFitter:
    """One column's cells made exactly as wide as the column, a chunk at a time.

    Most columns repeat a few values (states, coroutines, locations): each
    distinct value is fitted once, and a chunk is one memo lookup per cell,
    in C.  A column whose first chunk is mostly distinct (ids, task names)
    is fitted by C passes instead (slices, ``str.ljust``), without the set
    a memo needs.  With rows joined from fitted cells, this replaced a
    %-format per row: a 100k-row ``ps`` table at 80 columns went from
    ~0.28 to ~0.16 s (README, "Benchmarks").
    """

    def __init__(self, width: int, shrinks: bool, padded: bool, colour: Callable[[str], str] | None) -> None:
        self._width = width
        #: Whether some cells are too long (the column was narrowed).
        self._shrinks = shrinks
        #: Every column but the last is padded to its width.
        self._padded = padded
        #: The state column's colour, applied after padding.
        self._colour = colour
        self._memo: dict[str, str] | None = {}

    def _fitted(self, cell: str) -> str:
        text = fit(cell, self._width) if self._padded else ellipsize(cell, self._width)
        return text if self._colour is None else self._colour(text)

    def __call__(self, cells: list[str]) -> list[str]:
        memo = self._memo
        if memo is not None:
            new = set(cells).difference(memo)
            # A new value costs a Python call, a distinct column's cell a few
            # C passes: past a quarter of new values, the passes are cheaper.
            if 4 * len(new) <= len(cells) or self._colour is not None:
                memo.update(zip(new, map(self._fitted, new), strict=True))
                return list(map(memo.__getitem__, cells))
            self._memo = None  # mostly distinct: from now on, C passes
        if self._shrinks:
            cells = _shortened(cells, self._width)
        return list(map(str.ljust, cells, itertools.repeat(self._width))) if self._padded else cells


def _shortened(cells: list[str], width: int) -> list[str]:
    """*cells*, those longer than *width* ellipsized (the rest as they are)."""
    too_long = list(map(operator.lt, itertools.repeat(width), map(len, cells)))
    if not any(too_long):
        return cells
    if all(too_long):
        return ellipsized(cells, width)
    long_ones = list(itertools.compress(cells, too_long))
    return list(map(dict(zip(long_ones, ellipsized(long_ones, width), strict=True)).get, cells, cells))


def ellipsized(texts: list[str], width: int) -> list[str]:
    """``ellipsize(text, width)`` of texts longer than *width*, by C-level
    slicing and joining: 100k distinct task names shortened one Python call
    each took ~0.2 s; a %-format with the … in it ~70 ms, since a format
    string outside ASCII is slow; two slices and a join ~45 ms."""
    head = (width - 1) // 3
    tail = width - 1 - head
    if tail <= 0:  # (never for a column: they shrink to MIN_COLUMN at most)
        return [ellipsize(text, width) for text in texts]
    fronts = map(_sliced, texts, itertools.repeat(slice(None, head)))
    backs = map(_sliced, texts, itertools.repeat(slice(-tail, None)))
    return list(map("…".join, zip(fronts, backs, strict=True)))


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    keep: Collection[int] = (0,),
) -> str:
    """A small table (``who``, ``top``, ``ended``, tests) as one string."""
    columns = [[row[i] for row in rows] for i in range(len(headers))]
    return "".join(table_text(headers, columns, width, style, state_column, keep))
