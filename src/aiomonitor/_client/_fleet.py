"""Every monitor on the host at once: ``aiomonitor ls`` and ``aiomonitor --all -c``.

Each process is asked in a thread of its own with its own deadline, so a
stopped or hung process costs the timeout and holds up nobody else's answer.
Answers are printed in the registry's order (oldest monitor first), so two
runs of a script compare line by line.

``ls`` draws the processes of a service (``aiomonitor run``) as a tree
under the process that started them: under their supervisor, which may run
no loop and so have no monitor of its own (its workers' entries name it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO, TypeVar

from .._registry import Entry, Service
from .._render._table import Column, format_table
from . import _oneshot

Result = TypeVar("Result")

#: Threads asking at once; more processes than this wait for a free one.
MAX_PARALLEL = 32


def ask_each(entries: list[Entry], ask: Callable[[Entry], Result]) -> list[Result | _oneshot.NoAnswer]:
    """``ask(entry)`` for every entry concurrently; a ``NoAnswer`` in place of a failed answer."""

    def one(entry: Entry) -> Result | _oneshot.NoAnswer:
        try:
            return ask(entry)
        except _oneshot.NoAnswer as exc:
            return exc

    if not entries:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(entries)), thread_name_prefix="aiomonitor-ask") as pool:
        return list(pool.map(one, entries))


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def list_monitors(entries: list[Entry], *, password: str | None, timeout: float, as_json: bool, out: TextIO) -> int:
    """The ``ls`` table (or JSON lines); task counts from each monitor's greeting."""

    def count(entry: Entry) -> int | None:
        if entry.password and password is None:
            raise _oneshot.PasswordNeeded("password")
        return _oneshot.task_count(entry.monitor, prompt=entry.prompt, password=password, timeout=timeout)

    counts = ask_each(entries, count)
    now = time.time()
    if as_json:
        for entry, tasks in zip(entries, counts, strict=True):
            record = entry.to_json()
            record.update(
                address=str(entry.monitor),
                tasks=tasks if isinstance(tasks, int) else None,
                # A monitor asking for a password we lack answers; it is locked, not gone.
                reachable=isinstance(tasks, _oneshot.PasswordNeeded) or not isinstance(tasks, _oneshot.NoAnswer),
                locked=isinstance(tasks, _oneshot.PasswordNeeded),
                uptime=round(entry.uptime(now), 1),
            )
            out.write(json.dumps(record) + "\n")
        return 0
    if not entries:
        out.write("No running monitors found.\n")
        return 0
    shown_count = {id(entry): _shown_count(tasks) for entry, tasks in zip(entries, counts, strict=True)}
    rows = []
    for branch, node in process_tree(entries):
        if isinstance(node, Service):  # a supervisor: no loop, so no monitor of its own
            rows.append(
                (f"{branch}{node.pid}", node.program, "-", "-", "(supervisor)", format_uptime(now - node.started))
            )
            continue
        rows.append(
            (
                f"{branch}{node.pid}",
                node.program,
                node.framework,
                shown_count[id(node)],
                str(node.monitor),
                format_uptime(node.uptime(now)),
            )
        )
    out.write(format_table(LS_TABLE, rows, None))
    return 0


def _shown_count(tasks: int | _oneshot.NoAnswer | None) -> str:
    if isinstance(tasks, _oneshot.PasswordNeeded):
        return "locked"
    if isinstance(tasks, _oneshot.NoAnswer):
        return "no answer"
    return "?" if tasks is None else str(tasks)


def process_tree(entries: list[Entry]) -> list[tuple[str, Entry | Service]]:
    """Every entry, each under the process that started it, depth first in the
    registry's order; a service's supervisor that has no monitor stands in
    as its ``Service``.  With each, the branch drawn before its pid
    (``"├─ "``, ``"│  └─ "``; ``""`` at the top)."""
    by_pid: dict[int, Entry | Service] = {}
    for entry in entries:
        by_pid.setdefault(entry.pid, entry)
    for entry in entries:
        if entry.service is not None:
            by_pid.setdefault(entry.service.pid, entry.service)
    children: dict[int, list[Entry | Service]] = {}
    tops: list[Entry | Service] = []
    for node in _in_order(entries, by_pid):
        parent = _parent(node, by_pid)
        if parent is None:
            tops.append(node)
        else:
            children.setdefault(parent, []).append(node)
    rows: list[tuple[str, Entry | Service]] = []
    seen: set[int] = set()

    def walk(node: Entry | Service, lead: str, branch: str) -> None:
        if id(node) in seen:  # a pid reused into a loop of parents: shown once
            return
        seen.add(id(node))
        rows.append((lead + branch, node))
        kids = children.get(node.pid, []) if node is by_pid.get(node.pid) else []
        below = lead + ("" if not branch else "   " if branch.startswith("└") else "│  ")
        for index, kid in enumerate(kids):
            walk(kid, below, "└─ " if index == len(kids) - 1 else "├─ ")

    for top in tops:
        walk(top, "", "")
    for node in _in_order(entries, by_pid):  # any left (a cycle of pids): at the top
        if id(node) not in seen:
            walk(node, "", "")
    return rows


def _in_order(entries: list[Entry], by_pid: dict[int, Entry | Service]) -> list[Entry | Service]:
    """The entries, and the supervisors without one, oldest first."""
    supervisors = [node for node in by_pid.values() if isinstance(node, Service)]
    nodes: list[Entry | Service] = [*entries, *supervisors]
    return sorted(nodes, key=lambda node: (node.started, node.pid))


def _parent(node: Entry | Service, by_pid: dict[int, Entry | Service]) -> int | None:
    """The pid *node* is drawn under: the process that started it when that is
    listed, else its service's supervisor (a worker a forkserver started)."""
    if isinstance(node, Service):
        return None
    if node.parent is not None and node.parent != node.pid and node.parent in by_pid:
        return node.parent
    if node.service is not None and node.service.pid != node.pid:
        return node.service.pid
    return None


def service_of(selector: str, entries: list[Entry]) -> list[Entry] | None:
    """The monitored processes of one service when *selector* names the
    service rather than one process: its supervisor's pid (which has no
    monitor), or a name only that service's processes match.  Else None."""
    if selector.isdigit():
        pid = int(selector)
        if any(entry.pid == pid for entry in entries):
            return None
        members = [entry for entry in entries if entry.service is not None and entry.service.pid == pid]
    else:
        members = [entry for entry in entries if selector in entry.program]
        services = {entry.service.pid if entry.service is not None else None for entry in members}
        if len({entry.pid for entry in members}) < 2 or len(services) != 1 or None in services:
            return None
    return members or None


LS_TABLE = (
    Column("PID"),
    Column("PROGRAM"),
    Column("FRAMEWORK"),
    Column("TASKS", number=True),
    Column("ADDRESS"),
    Column("UPTIME", number=True),
)


def run_everywhere(
    entries: list[Entry],
    line: str,
    *,
    password: str | None,
    timeout: float,
    prefix: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """*line* on every monitor; each answer under a header (or each line
    prefixed with its pid).  1 if any process did not answer, or cut its answer."""

    def run(entry: Entry) -> str:
        return _oneshot.run_line(entry.monitor, line, prompt=entry.prompt, password=password, timeout=timeout)

    answers = ask_each(entries, run)
    status = 0
    for entry, answer in zip(entries, answers, strict=True):
        if isinstance(answer, _oneshot.NoAnswer):
            err.write(f"aiomonitor: pid {entry.pid} ({entry.program}): {_oneshot.reason(answer, timeout)}\n")
            status = 1
        elif prefix:
            for text in answer.splitlines():
                out.write(f"{entry.pid}: {text}\n")
        else:
            out.write(f"== pid {entry.pid}: {entry.program} ({entry.framework}, {entry.monitor}) ==\n")
            out.write(answer if answer.endswith("\n") or not answer else answer + "\n")
        cut = None if isinstance(answer, _oneshot.NoAnswer) else _oneshot.cut_reason(answer)
        if cut is not None:
            err.write(f"aiomonitor: pid {entry.pid} ({entry.program}): {cut}\n")
            status = 1
    return status
