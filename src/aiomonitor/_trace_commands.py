"""Commands over what tracing remembers: history, creation chains, the await
graph, and a live view.  They run in worker threads, like the built-ins."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, TextIO

from . import _format, _graph
from .backends import Backend, TaskSnapshot
from .backends._tracing import Canceller, EndedTask, TaskRecord
from .utils import alt_names

if TYPE_CHECKING:
    from ._session import Session
    from ._style import Style

#: Refresh period and row count of ``top``.
TOP_INTERVAL = 1.0
TOP_ROWS = 20
CLEAR_SCREEN = "\x1b[H\x1b[2J"
NOT_TRACED = "Task tracing is off: start the monitor with trace_tasks=True to record this.\n"
NO_HISTORY = (
    "The ended-task history is off: start the monitor with trace_tasks=True and"
    " max_termination_history=1000 (say) to keep the last ended tasks.\n"
)


def describe_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def creation_lines(record: TaskRecord | None) -> str:
    """'Created by' chain, root first: where each ancestor made the next."""
    if record is None:
        return ""
    out = ["Creation chain (oldest first):\n"]
    for link in record.chain():
        out.append(f"  task {link.task_id} created at {_format.format_location(link.created)}\n")
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
    return f"{heading} {who}; most recent call last:\n" + _format.format_stack(canceller.stack, style)


class TraceCommands:
    """``ended``, ``where-ended``, ``pstree`` and ``top``."""

    if TYPE_CHECKING:
        _sout: TextIO
        _backend: Backend

        @property
        def _session(self) -> Session | None: ...

        @property
        def _width(self) -> int | None: ...

        @property
        def _style(self) -> Style: ...

    @alt_names("ps-ended pst")
    def do_ended(self, *args: str) -> None:
        """Show recently ended tasks (needs max_termination_history)

        Usage: ended [-j] [FILTER...]: how each ended (returned, raised,
        cancelled), how long it lived and where it was created, newest last.
        """
        as_json = "-j" in args or "--json" in args
        filters = [a.lower() for a in args if a not in ("-j", "--json")]
        if not self._backend.keeps_history:
            self._sout.write(NO_HISTORY)
            return
        history = self._backend.history()
        ended = [e for e in history if all(f in f"{e.id} {e.name} {e.coro} {e.outcome}".lower() for f in filters)]
        if as_json:
            for item in ended:
                self._sout.write(json.dumps(_ended_json(item)) + "\n")
            return
        now = time.monotonic()
        rows = [
            (
                str(e.id),
                e.name,
                e.coro,
                e.outcome,
                describe_age(e.lifetime),
                describe_age(now - e.ended_at) + " ago",
                _format.format_location(e.record.created if e.record else None),
            )
            for e in ended
        ]
        headers = ("Task ID", "Name", "Coroutine", "Outcome", "Lived", "Ended", "Created at")
        self._sout.write(f"{_format.plural(len(rows), 'ended task')}\n")
        self._sout.write(_format.format_table(headers, rows, self._width, self._style))

    @alt_names("where-ended wt")
    def do_where_ended(self, taskid: int) -> None:
        """Show how an ended task ended, who cancelled it and where it was created"""
        if not self._backend.keeps_history:
            self._sout.write(NO_HISTORY)
            return
        ended = next((e for e in reversed(self._backend.history()) if e.id == taskid), None)
        if ended is None:
            self._sout.write(f"No ended task {taskid} in the history\n")
            return
        self._sout.write(f"Task {ended.id} ({ended.name}, {ended.coro}) {ended.outcome}")
        self._sout.write(f" after {describe_age(ended.lifetime)}.\n" if ended.lifetime is not None else ".\n")
        self._sout.write(canceller_lines("Cancelled by", ended.canceller, self._style))
        self._sout.write(creation_lines(ended.record))

    def do_pstree(self, *args: str) -> None:
        """Show which task waits for which, as a tree

        Edges: await (a task awaiting another), gather, taskgroup (an
        asyncio.TaskGroup's members), nursery (trio), and with trace_tasks,
        created (a task nobody waits for, under its creator).  Cycles are
        reported.  -j prints the graph as JSON.
        """
        snapshots = {t.id: t for t in self._backend.snapshot()}
        edges = self._backend.await_edges()
        creators = {t.id: t.creator_id for t in snapshots.values() if t.creator_id is not None}
        if "-j" in args or "--json" in args:
            self._sout.write(json.dumps(_graph_json(snapshots, edges, creators)) + "\n")
            return
        labels = {task_id: f"{t.name} ({t.coro}) {task_id}" for task_id, t in snapshots.items()}
        lines, cycles = _graph.tree_lines(labels, edges, creators)
        for chunk in _format.batched_text(lines):
            self._sout.write(chunk)
        if cycles:
            self._sout.write(f"{_format.plural(len(cycles), 'await cycle')} found (a deadlock).\n")

    def do_top(self, sort: str = "age", interval: float = TOP_INTERVAL) -> None:
        """A live task view: the oldest (or by name) tasks, refreshed until Enter or Ctrl-C

        Usage: top [age|name|busy] [INTERVAL]; busy needs trace_timing.
        """
        if sort not in ("age", "name", "busy"):
            self._sout.write("Sort by age, name or busy\n")
            return
        session = self._session
        while True:
            tasks = list(self._backend.snapshot())
            now = time.monotonic()
            tasks.sort(key=_format.TASK_SORT_KEYS[sort])
            self._sout.write(CLEAR_SCREEN + self._top_screen(tasks, now, sort))
            if session is None or session.wait_for_input(interval):
                break

    def _top_screen(self, tasks: list[TaskSnapshot], now: float, sort: str) -> str:
        rows = [
            (
                str(t.id),
                t.state,
                t.name,
                t.coro,
                describe_age(None if t.created_at is None else now - t.created_at),
                _format.seconds_text(t.busy),
                _format.format_location(t.location),
            )
            for t in tasks[:TOP_ROWS]
        ]
        header = f"{_format.plural(len(tasks), 'task')}, sorted by {sort}; Enter or Ctrl-C leaves\n"
        headers = ("Task ID", "State", "Name", "Coroutine", "Age", "Busy", "Location")
        return header + _format.format_table(headers, rows, self._width, self._style, state_column=1)


def _ended_json(ended: EndedTask) -> dict[str, Any]:
    canceller = ended.canceller
    return {
        "id": ended.id,
        "name": ended.name,
        "coro": ended.coro,
        "outcome": ended.outcome,
        "lived": ended.lifetime,
        "created": None if ended.record is None or ended.record.created is None else list(ended.record.created),
        "creator_id": None if ended.record is None or ended.record.parent is None else ended.record.parent.task_id,
        "cancelled_by": None if canceller is None else {"task_id": canceller.task_id, "task_name": canceller.task_name},
    }


def _graph_json(
    snapshots: dict[int, TaskSnapshot], edges: list[_graph.Edge], creators: dict[int, int]
) -> dict[str, Any]:
    labels = {task_id: t.name for task_id, t in snapshots.items()}
    _, cycles = _graph.tree_lines(labels, edges, creators)
    return {
        "tasks": [{"id": t.id, "name": t.name, "coro": t.coro} for t in snapshots.values()],
        "edges": [{"waiter": w, "awaited": a, "how": how} for w, a, how in edges if w in snapshots and a in snapshots],
        "created_by": {str(child): creator for child, creator in creators.items()},
        "cycles": cycles,
    }
