"""Aligned text tables, made a column and a chunk of rows at a time.  Pure.

A 100k-row ``ps`` used to make each row with a Python call, and each cell
with another when the table was shortened to fit a terminal: 0.6 s of the
command.  Here a chunk of rows is fitted a column at a time by C-level passes
(``map`` of ``len``, a memo's ``get``); Python runs only for a cell too long
for its column, once per distinct cell.  Each row is then one %-format, in C,
and the rows of a chunk are joined at once.

Chunks keep every C call short: one pass over 100k cells holds the GIL for
~5 ms, and the app's loop cannot take it back in the middle of a call.
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Collection, Iterator, Sequence

from ._style import PLAIN, Style

#: Columns may shrink to this before the table is allowed to overflow.
MIN_COLUMN = 8
#: The width of a client that did not say (plain telnet, nc): a classic terminal.
DEFAULT_WIDTH = 80
#: Rows per chunk of text (and per C-level pass).
CHUNK_ROWS = 2048
_GAP = "  "

Columns = list[list[str]]


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
    """``max(map(len, column))`` in chunks (see the module's docstring)."""
    return max((max(map(len, column[i : i + CHUNK_ROWS])) for i in range(0, len(column), CHUNK_ROWS)), default=0)


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
    row_format = _GAP.join("%s" if i in (styled, last) else f"%-{w}s" for i, w in enumerate(given))
    header_cells = tuple(ellipsize(header, w) for header, w in zip(headers, given, strict=True))
    if styled is not None:
        header_cells = (*header_cells[:styled], fit(headers[styled], given[styled]), *header_cells[styled + 1 :])
    yield style.heading(row_format % header_cells) + "\n" + style.rule(_GAP.join("-" * w for w in given)) + "\n"
    # The state column's cells, padded and coloured: once per distinct state.
    styled_states: dict[str, str] = {}
    for start in range(0, len(columns[0]) if columns else 0, CHUNK_ROWS):
        chunk = []
        for index, column in enumerate(columns):
            cells = column[start : start + CHUNK_ROWS]
            if index == styled:
                cells = _styled(cells, styled_states, given[index], style)
            elif given[index] < needed[index]:
                cells = _shortened(cells, given[index])
            chunk.append(cells)
        yield "\n".join(map(row_format.__mod__, zip(*chunk, strict=True))) + "\n"


def _shortened(cells: list[str], width: int) -> list[str]:
    """*cells*, those longer than *width* ellipsized (the rest as they are)."""
    too_long = list(map(operator.lt, itertools.repeat(width), map(len, cells)))
    if not any(too_long):
        return cells
    distinct = list(set(itertools.compress(cells, too_long)))
    if 2 * len(distinct) > len(cells) and all(too_long):  # mostly distinct (task names): each once anyway
        return ellipsized(cells, width)
    return list(map(dict(zip(distinct, ellipsized(distinct, width), strict=True)).get, cells, cells))


def ellipsized(texts: list[str], width: int) -> list[str]:
    """``ellipsize(text, width)`` of texts longer than *width*, by C-level
    slicing and formatting: 100k distinct task names shortened one Python
    call each took ~0.2 s."""
    head = (width - 1) // 3
    tail = width - 1 - head
    if tail <= 0:  # (never for a column: they shrink to MIN_COLUMN at most)
        return [ellipsize(text, width) for text in texts]
    backs = map(operator.getitem, texts, itertools.repeat(slice(-tail, None)))
    # %.Ns takes the first N characters, in C, without a slice of its own.
    return list(map(f"%.{head}s…%s".__mod__, zip(texts, backs, strict=True)))


def _styled(cells: list[str], memo: dict[str, str], width: int, style: Style) -> list[str]:
    """*cells* fitted to *width*, then coloured (states are few: each is styled once)."""
    memo.update((cell, style.state(fit(cell, width))) for cell in set(cells).difference(memo))
    return list(map(memo.__getitem__, cells))


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
