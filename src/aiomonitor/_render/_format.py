"""Snapshots to text: the ``ps`` table and traceback-style stacks.  Pure.

Runs in worker threads, after the snapshot was taken: the cost of formatting
100k rows is paid here, never in the monitored loop's thread.
"""

from __future__ import annotations

import itertools
import linecache
import operator
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence

from .._query._cost import Bill
from .._query._diagnosis import describe_holders, wait_target
from .._query._groups import TaskGroup
from .._query._locations import format_location
from .._query._trend import GroupTrend
from ..backends import Canceller, FrameInfo, TaskColumns, TaskRecord, Wait
from ._style import PLAIN, Style
from ._table import Column, Columns, format_table, table_text


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
#: The order in which ps hides columns to fit a narrow window (first hidden
#: first): the coroutine when it only repeats the location's function, then
#: these, then the coroutine anyway.
PS_HIDE_ORDER = ("Created at", "Max step", "Busy", "Steps", "Age")


def ps_table(traced: bool, timed: bool, coroutine_adds_nothing: bool) -> list[Column]:
    """The ps table's columns, with what may be hidden and in which order."""
    coroutine_rank = -1 if coroutine_adds_nothing else len(PS_HIDE_ORDER)
    ranks = {header: rank for rank, header in enumerate(PS_HIDE_ORDER)}
    headers = PS_HEADERS + (TRACE_HEADERS if traced else ()) + (TIMING_HEADERS if timed else ())
    return [
        Column(
            header,
            number=header in ("Age", "Steps", "Busy", "Max step"),
            location=header in ("Location", "Created at"),
            hide_rank=coroutine_rank if header == "Coroutine" else ranks.get(header),
        )
        for header in headers
    ]


def coroutine_adds_nothing(coros: Sequence[str], locations: Sequence[str], chunk: int = 2048) -> bool:
    """Whether each coroutine's name is the function its location already
    names (``worker`` beside ``app.py:31 in worker``): then the column only
    repeats it.  Compared once per distinct pair, a chunk at a time."""
    for start in range(0, len(coros), chunk):
        pairs = set(zip(coros[start : start + chunk], locations[start : start + chunk], strict=True))
        for coro, location in pairs:
            if coro.rpartition(".")[2] != location.rpartition(" in ")[2]:
                return False
    return True


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f}ms" if seconds < 1 else f"{seconds:.2f}s"


def ps_columns(chunks: Iterable[TaskColumns], traced: bool = False, timed: bool = False) -> Columns:
    """The ps table's columns; a task listed after its parent is indented under it (trio's tree).

    Made from the snapshot's own columns, a chunk at a time, by C-level
    passes (``map`` of ``str``, of the memoised ``format_location``, of a
    %-format): the Python loop per task this replaced was a fifth of ``ps``
    at 100k.
    """
    columns: Columns = [[] for _ in range(5 + (2 if traced else 0) + (3 if timed else 0))]
    ids, states, names, coros, locations = columns[:5]
    depths: dict[int, int] = {}
    now = time.monotonic()
    for chunk in chunks:
        ids.extend(map(str, chunk.id))
        states.extend(chunk.state)
        if chunk.parent_id.count(None) == chunk.size:
            names.extend(chunk.name)
        else:
            names.extend(_indented_names(chunk, depths))
        coros.extend(chunk.coro)
        locations.extend(map(format_location, chunk.location))
        if traced:
            if None in chunk.created_at:
                columns[5].extend("-" if at is None else f"{now - at:.1f}s" for at in chunk.created_at)
            else:
                columns[5].extend(map("%.1fs".__mod__, map(operator.sub, itertools.repeat(now), chunk.created_at)))
            columns[6].extend(map(format_location, chunk.created))
        if timed:
            steps, busy, longest = columns[-3:]
            steps.extend("-" if count is None else str(count) for count in chunk.steps)
            busy.extend(map(seconds_text, chunk.busy))
            longest.extend(map(seconds_text, chunk.longest_step))
    return columns


def groups_text(total: int, groups: Sequence[TaskGroup], width: int | None, style: Style, wide: bool) -> list[str]:
    """``ps -g``: a row per group of alike tasks, the largest first."""
    now = time.monotonic()
    rows = [
        (
            str(group.count),
            ", ".join(state if len(group.states) == 1 else f"{state} {count}" for state, count in group.states.items()),
            "tasks" if group.name is None else group.name,
            group.coro,
            format_location(group.location),
            describe_age(None if group.oldest is None else now - group.oldest),
            describe_age(None if group.newest is None else now - group.newest),
            ", ".join(map(str, group.examples)) + (", …" if group.count > len(group.examples) else ""),
        )
        for group in groups
    ]
    cells = [[row[i] for row in rows] for i in range(len(GROUP_HEADERS))]
    redundant = coroutine_adds_nothing(cells[3], cells[4])
    layout = [
        Column(header, number=header in ("Count", "Oldest", "Newest"), location=header == "Location", hide_rank=rank)
        for header, rank in zip(GROUP_HEADERS, (None, None, None, -1 if redundant else 2, None, 1, 0, 3), strict=True)
    ]
    heading = f"{plural(total, 'task')} in {plural(len(groups), 'group')} of alike tasks (same coroutine, same line)\n"
    return [heading, *table_text(layout, cells, width, style, wide=wide)]


GROUP_HEADERS = ("Count", "States", "Name", "Coroutine", "Location", "Oldest", "Newest", "Examples")


def _indented_names(chunk: TaskColumns, depths: dict[int, int]) -> list[str]:
    """Names indented two spaces per ancestor listed before (trio's tree order)."""
    names = []
    for task_id, parent_id, name in zip(chunk.id, chunk.parent_id, chunk.name, strict=True):
        depth = depths[task_id] = depths[parent_id] + 1 if parent_id in depths else 0
        names.append("  " * depth + name if depth else name)
    return names


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


#: ``trend``'s table: the count now and at three moments back, the change and since when.
TREND_TABLE = (
    Column("Now", number=True),
    Column("1 min", number=True, hide_rank=3),
    Column("5 min", number=True, hide_rank=2),
    Column("First", number=True, hide_rank=1),
    Column("Change", number=True),
    Column("Since", number=True),
    Column("Coroutine", hide_rank=4),
    Column("Location", location=True),
)


def trend_text(trends: Sequence[GroupTrend], samples: int, interval: float, width: int | None, style: Style) -> str:
    """The flight recorder's groups: how many now, then, and since when they grow or shrink."""
    if not trends:
        return "No census yet: the flight recorder takes its first one when the monitor starts.\n"
    first_at, last_at = trends[0].counts[0][0], trends[0].counts[-1][0]
    head = (
        f"{plural(len(trends), 'group')} of alike tasks over the last {_span(last_at - first_at)}"
        f" ({plural(samples, 'sample')}, one every {interval:g} s or more), largest change first.\n"
    )
    rows = []
    for trend in trends:
        counts = trend.counts
        now = counts[-1][1]
        rows.append(
            (
                f"{now:,}",
                _count_back(counts, 60),
                _count_back(counts, 300),
                f"{counts[0][1]:,}",
                f"{trend.change:+,}",
                time.strftime("%H:%M:%S", time.localtime(trend.since)),
                trend.coro,
                format_location(trend.location),
            )
        )
    return head + format_table(TREND_TABLE, rows, width, style)


def _count_back(counts: Sequence[tuple[float, int]], seconds: float) -> str:
    """The count *seconds* before the last sample ("-" before the recorder watched)."""
    moment = counts[-1][0] - seconds
    if counts[0][0] > moment + 1:
        return "-"
    earlier = [count for at, count in counts if at <= moment + 1]
    return f"{earlier[-1]:,}" if earlier else "-"


def _span(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def tracing_text(
    tracing: bool, since: float | None, history_size: int, timed: bool, totals: tuple[int, int | None] | None
) -> str:
    """``trace``'s answer: whether new tasks are traced, since when, and what of them."""
    if not tracing:
        return (
            "Tracing is off: tasks created now get no creation record (trace on starts it;"
            " the tasks traced before keep theirs).\n"
        )
    when = time.strftime("%H:%M:%S", time.localtime(since)) if since is not None else "the start"
    parts = ["creation records and chains"]
    parts.append(f"a history of the last {history_size:,} ended tasks" if history_size else "no history")
    parts.append("step timing" if timed else "no step timing")
    created = f" {totals[0]:,} tasks traced so far." if totals is not None else ""
    return f"Tracing is on since {when}: {', '.join(parts)}.{created}\n"


def byte_size(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} bytes"


def cost_text(bill: Bill) -> str:
    """``cost``'s answer: the monitor's own CPU, the worst stall it caused, what it holds."""
    lines = ["What the monitor itself spends:"]
    if bill.cpu is None:
        lines.append("  CPU of its threads: not known on this system (it reads /proc).")
    else:
        spent, window = bill.cpu
        share = f" ({spent / window:.1%})" if window > 0 else ""
        lines.append(
            f"  CPU of its threads: {spent:.2f} s in the last {window:.0f} s{share}; {bill.total_cpu:.1f} s in all."
        )
    if bill.worst_stall is None:
        lines.append("  Worst loop stall a command caused in the last hour: none measured.")
    else:
        worst = bill.worst_stall
        at = time.strftime("%H:%M:%S", time.localtime(worst.at))
        caused = f"{worst.seconds * 1000:.1f} ms ({worst.command}, {at})"
        lines.append(f"  Worst loop stall a command caused in the last hour: {caused}.")
    lines.append(f"  Tracing: {bill.tracing}.")
    memory = bill.tracing_memory
    if memory is None:
        lines.append("  Held by tracing: nothing (no task was traced).")
    else:
        lines.append(
            f"  Held by tracing: {memory.per_task:.0f} bytes per traced task over {memory.tasks:,} live ones"
            f" ({byte_size(memory.per_task * memory.tasks)}); creation chains of ended creators"
            f" {byte_size(memory.chains)}; the history {byte_size(memory.history)}."
        )
    recorders = [f"stall recorder {byte_size(bill.stall_recorder_bytes)}"]
    if bill.flight_recorder_bytes is not None:
        recorders.insert(0, f"flight recorder {byte_size(bill.flight_recorder_bytes)}")
    lines.append(f"  Held by the recorders: {', '.join(recorders)}.")
    return "\n".join(lines) + "\n"
