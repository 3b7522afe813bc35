"""Every monitor on the host at once: ``aiomonitor ls`` and ``aiomonitor --all -c``.

Each process is asked in a thread of its own with its own deadline, so a
stopped or hung process costs the timeout and holds up nobody else's answer.
Answers are printed in the registry's order (oldest monitor first), so two
runs of a script compare line by line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO, TypeVar

from .._registry import Entry
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
    rows = []
    for entry, tasks in zip(entries, counts, strict=True):
        if isinstance(tasks, _oneshot.PasswordNeeded):
            shown = "locked"
        elif isinstance(tasks, _oneshot.NoAnswer):
            shown = "no answer"
        else:
            shown = "?" if tasks is None else str(tasks)
        rows.append(
            (
                str(entry.pid),
                entry.program,
                entry.framework,
                shown,
                str(entry.monitor),
                format_uptime(entry.uptime(now)),
            )
        )
    out.write(format_table(LS_TABLE, rows, None))
    return 0


LS_TABLE = (
    Column("PID", number=True),
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
