"""Commands over what tracing remembers: history, creation chains, the await
graph, and a live view.  Thin renderers over ``_query``; they run in worker
threads, like the built-ins."""

from __future__ import annotations

import json
import time

from .._gil._passes import release_gently
from .._query import _cost
from .._query import _queries as _query
from .._query._locations import format_location
from .._render import _format, _graph, _json, _table
from ..backends import LoopUnresponsive
from ..utils import alt_names, readonly
from ._context import CommandBase

#: Refresh period and row count of ``top``.
TOP_INTERVAL = 1.0
TOP_MIN_INTERVAL = 0.05
TOP_MAX_INTERVAL = 3600.0
TOP_ROWS = 20
CLEAR_SCREEN = "\x1b[H\x1b[2J"
NO_HISTORY = (
    "The ended-task history is off: start the monitor with trace_tasks=True and"
    " max_termination_history=1000 (say) to keep the last ended tasks.\n"
)


#: ``ended`` hides, to fit: where each was created, then its coroutine, then how long it lived.
ENDED_TABLE = (
    _table.Column("#", number=True),
    _table.Column("Task ID"),
    _table.Column("Name"),
    _table.Column("Coroutine", hide_rank=1),
    _table.Column("Outcome"),
    _table.Column("Lived", number=True, hide_rank=2),
    _table.Column("Ended", number=True),
    _table.Column("Created at", location=True, hide_rank=0),
)


def _top_table(coroutine_rank: int) -> tuple[_table.Column, ...]:
    """``top`` hides its coroutine first when it only repeats the location's function, then the age."""
    return (
        _table.Column("Task ID"),
        _table.Column("State"),
        _table.Column("Name"),
        _table.Column("Coroutine", hide_rank=coroutine_rank),
        _table.Column("Age", number=True, hide_rank=1),
        _table.Column("Busy", number=True),
        _table.Column("Location", location=True),
    )


TOP_TABLE, TOP_TABLE_PLAIN = _top_table(2), _top_table(0)


#: The history ``trace on`` keeps when the monitor was started without one.
RUNTIME_HISTORY = 100


def trace_switch(args: tuple[str, ...], default_history: int) -> tuple[bool, int, bool]:
    """(on, history size, timing) from ``trace on|off [--history N] [--timing]``; ValueError says what is wrong."""
    if not args or args[0] not in ("on", "off"):
        raise ValueError("trace takes on or off (and with on: --history N, --timing)")
    on, history, timing = args[0] == "on", default_history, False
    words = iter(args[1:])
    for word in words:
        if not on:
            raise ValueError("trace off takes nothing more")
        if word == "--timing":
            timing = True
        elif word == "--history":
            count = next(words, "")
            if not count.isdigit() or len(count) > 7:
                raise ValueError(f"--history takes a number of ended tasks from 0 to 9,999,999, not {count!r}")
            history = int(count)
        else:
            raise ValueError(f"trace on takes --history N and --timing, not {word!r}")
    return on, history, timing


class TraceCommands(CommandBase):
    """``trace``, ``ended``, ``where-ended``, ``pstree`` and ``top``."""

    def do_trace(self, *args: str) -> None:
        """Switch tracing of the tasks created from now on: trace on|off

        Usage: trace (the state), trace on [--history N] [--timing], trace off.
        On: each task created from then on gets its creation record and
        chain (where, ps, pstree), ended tasks go to a history of N (the
        monitor's max_termination_history, else 100), and --timing times
        their steps.  Off: tasks created from then on are plain again; those
        traced keep what was recorded.  It costs the app a little per task
        created while on (benchmarks: tracing).
        """
        backend = self._context.backend
        if not args:
            self._sout.write(self._tracing_state())
            return
        try:
            on, history, timing = trace_switch(args, self._context.trace_history or RUNTIME_HISTORY)
        except ValueError as exc:
            self._sout.write(f"{exc}\n")
            return
        try:
            backend.retrace(on, history, timing)
        except (LoopUnresponsive, NotImplementedError) as exc:
            self._sout.write(f"Tracing unchanged: {exc}\n")
            self._audit("trace", " ".join(args), f"failed: {exc}")
            return
        self._audit("trace", " ".join(args), "done")
        self._sout.write(self._tracing_state())

    @readonly
    def do_cost(self) -> None:
        """Show what the monitor itself spends: CPU, loop stalls, memory

        The CPU time of the monitor's threads over the last minute, the worst
        loop stall a command caused in the last hour (a bound from above),
        whether tracing is on, and the memory held by tracing (bytes per
        traced task, creation chains, history) and the recorders, measured
        from the objects now.
        """
        context = self._context
        if context.bill is None:
            self._sout.write("cost is not available in this monitor\n")
            return
        bill = self._compute(_cost.bill_of, context.bill, context.backend, context.stall_recorder, context.trend)
        self._sout.write(_format.cost_text(bill))

    def _tracing_state(self) -> str:
        backend = self._context.backend
        return _format.tracing_text(
            backend.tracing,
            backend.tracing_since,
            backend.history_size if backend.keeps_history else 0,
            backend.timed,
            backend.trace_totals(),
        )

    @alt_names("ps-ended pst")
    @readonly
    def do_ended(self, *args: str) -> None:
        """Show recently ended tasks (needs max_termination_history)

        Usage: ended [-j] [-a] [-w] [FILTER...]: how each ended (returned,
        raised, cancelled), how long it lived and where it was created, newest
        last; -a includes the monitor's own tasks (console statements); -w
        shows every column, where a narrow window hides some.
        """
        as_json = "-j" in args or "--json" in args
        include_own = "-a" in args or "--all" in args
        wide = "-w" in args or "--wide" in args
        flags = ("-j", "--json", "-a", "--all", "-w", "--wide")
        filters = [a.lower() for a in args if a not in flags]
        try:
            ended = _query.ended_tasks(self._context.backend, filters, include_own)
        except _query.HistoryOff:
            self._sout.write(NO_HISTORY)
            return
        if as_json:
            for item in ended:
                self._sout.write(json.dumps(_json.ended(item)) + "\n")
            return
        now = time.monotonic()
        rows = [
            (
                str(e.id),
                str(e.task_id),
                e.name,
                e.coro,
                e.outcome,
                _format.describe_age(e.lifetime),
                _format.describe_age(now - e.ended_at) + " ago",
                format_location(e.record.created if e.record else None),
            )
            for e in ended
        ]
        self._sout.write(f"{_format.plural(len(rows), 'ended task')}\n")
        self._sout.write(_table.format_table(ENDED_TABLE, rows, self._width, self._style, wide=wide))

    @alt_names("where-ended wt")
    @readonly
    def do_where_ended(self, taskid: str) -> None:
        """Show how an ended task ended, who cancelled it and where it was created

        Takes the entry number ``ended`` shows in its first column, or the
        task's id while it lived, or its name; when several entries match,
        they are listed.
        """
        try:
            matches = _query.find_ended(self._context.backend, taskid)
        except _query.HistoryOff:
            self._sout.write(NO_HISTORY)
            return
        if not matches:
            self._sout.write(f"No ended task {taskid} in the history\n")
            return
        if len(matches) > 1:
            self._sout.write(f"{len(matches)} ended tasks match {taskid}, newest first; give an entry number:\n")
            for e in matches:
                self._sout.write(f"  #{e.id}  task {e.task_id} ({e.name})  {e.outcome}\n")
            return
        (ended,) = matches
        self._sout.write(f"Task {ended.task_id} ({ended.name}, {ended.coro}) {ended.outcome}")
        self._sout.write(f" after {_format.describe_age(ended.lifetime)}.\n" if ended.lifetime is not None else ".\n")
        self._sout.write(_format.canceller_lines("Cancelled by", ended.canceller, self._style))
        # Naming the creators still alive looks through every live task: a heavy section.
        names = self._compute(_query.chain_names, self._context.backend, ended.record)
        self._sout.write(_format.creation_lines(ended.record, names))

    @readonly
    def do_pstree(self, *args: str) -> None:
        """Show which task waits for which, as a tree

        Edges: await (a task awaiting another), gather, taskgroup (an
        asyncio.TaskGroup's members), nursery (trio), and with trace_tasks,
        created (a task nobody waits for, under its creator).  Cycles are
        reported.  Three or more alike childless siblings (the same coroutine
        at the same line) are folded into one line with their count and a few
        example ids; --expand (-e) shows every task.  -j prints the graph as
        JSON, every task; -a includes the monitor's own tasks (console
        statements).
        """
        as_json = "-j" in args or "--json" in args
        include_own = "-a" in args or "--all" in args
        expand = as_json or "-e" in args or "--expand" in args
        share = ("pstree", as_json, include_own, expand)
        self._write_all(self._compute_text(self._pstree_text, as_json, include_own, expand, share=share))

    def _pstree_text(self, as_json: bool, include_own: bool, expand: bool) -> list[str]:
        tree = _query.await_tree(self._context.backend, include_own)
        try:
            if as_json:
                return list(_json.await_tree(tree))
            labels = _graph.labels(tree.names, tree.coros)
            folding = None if expand else _graph.Folding(tree.names, tree.coros, tree.locations)
            lines, cycles = _graph.tree_lines(labels, tree.edges, tree.creators, folding)
            chunks = list(_format.batched_text(lines))
            release_gently(lines, labels)
        finally:
            tree.release()
        if cycles:
            chunks.append(f"{_format.plural(len(cycles), 'await cycle')} found (a deadlock).\n")
        return chunks

    @readonly
    def do_top(self, sort: str = "age", interval: float = TOP_INTERVAL) -> None:
        """A live task view: the oldest (or by name) tasks, refreshed until Enter or Ctrl-C

        Usage: top [age|name|busy] [INTERVAL]; busy needs trace_timing.
        """
        if sort not in ("age", "name", "busy"):
            self._sout.write("Sort by age, name or busy\n")
            return
        # Also refuses nan and inf: a refresh with no wait between screens
        # would spin a worker thread and hog the GIL.
        if not TOP_MIN_INTERVAL <= interval <= TOP_MAX_INTERVAL:
            self._sout.write(
                f"The interval is {TOP_MIN_INTERVAL:g} to {TOP_MAX_INTERVAL:g} seconds, not {interval!r}\n"
            )
            return
        client = self._client
        while True:
            screen = self._compute(self._top_screen, sort, share=("top", sort, self._width, self._style))
            self._sout.write(CLEAR_SCREEN + screen)
            if client is None or client.wait_for_input(interval):
                break

    def _top_screen(self, sort: str) -> str:
        selection = _query.select_tasks(self._context.backend, _query.TaskQuery(sort=sort, limit=TOP_ROWS))
        tasks = list(selection)
        total = selection.total
        now = time.monotonic()
        rows = [
            (
                str(t.id),
                t.state,
                t.name,
                t.coro,
                _format.describe_age(None if t.created_at is None else now - t.created_at),
                _format.seconds_text(t.busy),
                format_location(t.location),
            )
            for t in tasks
        ]
        header = f"{_format.plural(total, 'task')}, sorted by {sort}; Enter or Ctrl-C leaves\n"
        redundant = _format.coroutine_adds_nothing([row[3] for row in rows], [row[6] for row in rows])
        layout = TOP_TABLE_PLAIN if redundant else TOP_TABLE
        return header + _table.format_table(
            layout, rows, self._width, self._style, state_column=1, wide_hint="a wider window shows all"
        )
