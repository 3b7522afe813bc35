"""Aligned text tables, and the one rule every table follows to fit a width.  Pure.

The rule (``ps``, ``ended``, ``top``, ``who``, ``ls``):

* **Identifiers are never shortened**: task ids, task names, entry numbers,
  anything a person types back or searches for.  No cell is ever cut in the
  middle.
* **Columns give way before cells do.**  A table too wide for the client's
  window first hides its optional columns, in the order the command states,
  and says so in one line under the table.  Only then are locations
  shortened, by dropping leading directories (``…/app.py:31 in main``) and
  then ``in FUNC``; ``file.py:LINE`` always stays.  Past that the table is
  wider than the window: a person can scroll, not guess.
* **A width that is not known shortens nothing**: the columns are chosen as
  for :data:`DEFAULT_WIDTH`, every cell whole.  ``wide`` (``-w``) shows every
  column whole.
* Text aligns left, numbers right.

Made a column and a chunk of rows at a time: a chunk of a column is fitted
by C-level passes (``map`` of a memo's ``__getitem__``, ``str.ljust``), and
Python runs only once per distinct value of a column that repeats its values.
Each row is one join of its cells, in C, and a chunk's rows are joined at
once.  Chunks keep every C call short: one pass over 100k cells holds the GIL
for ~5 ms, and the app's loop cannot take it back in the middle of a call.
"""

from __future__ import annotations

import functools
import itertools
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ._style import PLAIN, Style

#: The width assumed for choosing columns when the client did not say (nc, piped input).
DEFAULT_WIDTH = 80
#: Rows per chunk of text (and per C-level pass).
CHUNK_ROWS = 2048
_GAP = "  "

Columns = list[list[str]]

_LOCATION = re.compile(r"(?P<path>.*):(?P<line>\d+)(?P<function> in .*)?", re.DOTALL)


@dataclass(frozen=True)
class Column:
    """What a table must know of a column to lay it out."""

    header: str
    #: Right-aligned (a count, a duration); text aligns left.
    number: bool = False
    #: A location (``path:LINE in FUNC``): the one kind of cell that may be shortened.
    location: bool = False
    #: Optional columns are hidden to fit, lowest rank first; None: always shown.
    hide_rank: int | None = None


@functools.lru_cache(maxsize=8192)
def shortened_location(text: str, width: int) -> str:
    """*text* (``path/to/app.py:31 in main``) in at most *width* characters if it
    can be: leading directories go first (``…/app.py:31 in main``), then
    ``in FUNC``; never ``file.py:LINE`` itself, so the result may be longer."""
    if len(text) <= width:
        return text
    match = _LOCATION.fullmatch(text)
    if match is None:  # not a location ("-"): whole
        return text
    directories = match["path"].split("/")
    file_name = directories.pop()
    line = f":{match['line']}"
    for tail in (match["function"] or "", ""):
        for keep in range(len(directories) - 1, -1, -1):
            kept = "/".join([*directories[len(directories) - keep :], file_name])
            candidate = f"…/{kept}{line}{tail}" if directories else f"{kept}{line}{tail}"
            if len(candidate) <= width:
                return candidate
    return f"…/{file_name}{line}" if directories else f"{file_name}{line}"


def shortest_location(text: str) -> int:
    """How short :func:`shortened_location` can make *text*."""
    return len(shortened_location(text, 0))


def _widest(column: Sequence[str], measure: Callable[[str], int] = len) -> int:
    """``max(map(measure, column))`` in chunks (see the module's docstring).

    A column that repeats a few values (a location, a state) is measured
    one distinct value at a time: a set of cells the column shares costs
    less than a ``len`` each, and hashes a string once for the fitting that
    follows.
    """
    if not column:
        return 0
    repeats = 4 * len(set(column[:CHUNK_ROWS])) <= min(CHUNK_ROWS, len(column))
    widest = 0
    for start in range(0, len(column), CHUNK_ROWS):
        chunk = column[start : start + CHUNK_ROWS]
        widest = max(widest, max(map(measure, set(chunk) if repeats else chunk)))
    return widest


@dataclass(frozen=True)
class Layout:
    """Which columns a table shows, how wide each is, and what it says it hid."""

    shown: list[int]
    widths: list[int]
    #: Whether each shown column had to be narrowed (its locations shortened).
    narrowed: list[bool]
    hidden: list[str]
    fit_to: int


def layout(columns: Sequence[Column], cells: Columns, width: int | None, wide: bool = False) -> Layout:
    """The table's layout for a client *width* columns wide (None: not known).

    See the module's docstring for the rule.
    """
    needed = [max(len(c.header), _widest(column)) for c, column in zip(columns, cells, strict=True)]
    shown = list(range(len(columns)))
    fit_to = DEFAULT_WIDTH if width is None else width
    if wide:
        return Layout(shown, needed, [False] * len(shown), [], fit_to)

    def total(widths: Iterable[int]) -> int:
        widths = list(widths)
        return sum(widths) + len(_GAP) * (len(widths) - 1)

    hidden: list[str] = []
    optional = sorted((c.hide_rank, i) for i, c in enumerate(columns) if c.hide_rank is not None)
    for _, i in optional:
        if total(needed[j] for j in shown) <= fit_to:
            break
        shown.remove(i)
        hidden.append(columns[i].header)
    widths = [needed[i] for i in shown]
    excess = total(widths) - fit_to
    if width is not None and excess > 0:
        for position, i in enumerate(shown):
            if excess <= 0 or not columns[i].location:
                continue
            floor = max(len(columns[i].header), _widest(cells[i], shortest_location))
            give = min(excess, widths[position] - floor)
            if give > 0:
                widths[position] -= give
                excess -= give
    narrowed = [given < needed[i] for i, given in zip(shown, widths, strict=True)]
    return Layout(shown, widths, narrowed, hidden, fit_to)


def table_text(
    columns: Sequence[Column],
    cells: Columns,
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    *,
    wide: bool = False,
    wide_hint: str = "-w shows all",
) -> Iterator[str]:
    """The table as newline-terminated chunks: heading, rule, rows, and a
    line naming the columns hidden to fit (with *wide_hint*), if any.

    With a colour *style*, the cells of *state_column* are coloured after
    padding, so escape codes never count as width.  Takes columns of plain
    strings, not rows: strings are not tracked by the cyclic GC, so a
    100k-row table adds a few tracked lists, not 100k tuples.
    """
    plan = layout(columns, cells, width, wide)
    last = len(plan.shown) - 1
    fitters = []
    for position, (i, given, narrowed) in enumerate(zip(plan.shown, plan.widths, plan.narrowed, strict=True)):
        align = "right" if columns[i].number else "left" if position < last else None
        colour = style.state if style.colour and i == state_column else None
        fitters.append(_ColumnFitter(given, narrowed, align, colour))
    heading = _GAP.join(
        (columns[i].header.rjust(w) if columns[i].number else columns[i].header.ljust(w))
        for i, w in zip(plan.shown, plan.widths, strict=True)
    ).rstrip()
    yield style.heading(heading) + "\n" + style.rule(_GAP.join("-" * w for w in plan.widths)) + "\n"
    rows = len(cells[0]) if cells else 0
    for start in range(0, rows, CHUNK_ROWS):
        fitted = [fitter(cells[i][start : start + CHUNK_ROWS]) for fitter, i in zip(fitters, plan.shown, strict=True)]
        yield "\n".join(map(_GAP.join, zip(*fitted, strict=True))) + "\n"
    if plan.hidden:
        yield hidden_note(plan, wide_hint)


def hidden_note(plan: Layout, wide_hint: str) -> str:
    """The line (or lines, within the width) naming the columns *plan* hid."""
    hint = f"({wide_hint})".replace(" ", "\0")  # wrapped as one word
    note = f"Hidden to fit {plan.fit_to} columns: {', '.join(plan.hidden)} {hint}"
    return textwrap.fill(note, max(plan.fit_to, 40), break_on_hyphens=False).replace("\0", " ") + "\n"


class _ColumnFitter:
    """One column's cells made exactly as wide as the column, a chunk at a time.

    Most columns repeat a few values (states, coroutines, locations): each
    distinct value is fitted once, and a chunk is one memo lookup per cell,
    in C.  A column whose first chunk is mostly distinct (ids, task names)
    is padded by C passes instead (``str.ljust``), without the set a memo needs.
    """

    def __init__(self, width: int, shorten: bool, align: str | None, colour: Callable[[str], str] | None) -> None:
        self._width = width
        #: A location column narrowed to fit: its long cells are shortened.
        self._shorten = shorten
        #: "left", "right", or None for the last column (no trailing spaces).
        self._align = align
        #: The state column's colour, applied after padding.
        self._colour = colour
        self._memo: dict[str, str] | None = {}

    def _fitted(self, cell: str) -> str:
        if self._shorten:
            cell = shortened_location(cell, self._width)
        if self._align == "left":
            cell = cell.ljust(self._width)
        elif self._align == "right":
            cell = cell.rjust(self._width)
        return cell if self._colour is None else self._colour(cell)

    def __call__(self, cells: list[str]) -> list[str]:
        memo = self._memo
        if memo is not None:
            new = set(cells).difference(memo)
            # A new value costs a Python call, a distinct column's cell a C
            # pass: past a quarter of new values, the passes are cheaper.
            if 4 * len(new) <= len(cells) or self._colour is not None or self._shorten:
                memo.update(zip(new, map(self._fitted, new), strict=True))
                return list(map(memo.__getitem__, cells))
            self._memo = None  # mostly distinct: from now on, C passes
        if self._align is None:
            return cells
        pad = str.ljust if self._align == "left" else str.rjust
        return list(map(pad, cells, itertools.repeat(self._width)))


def format_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    style: Style = PLAIN,
    state_column: int | None = None,
    *,
    wide: bool = False,
    wide_hint: str = "-w shows all",
) -> str:
    """A small table (``who``, ``top``, ``ended``, ``ls``) as one string."""
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    return "".join(table_text(columns, cells, width, style, state_column, wide=wide, wide_hint=wide_hint))
