"""``doctor``'s checks: pure functions from what the monitor knows to findings.

Each check takes plain records (waits, await edges, stalls, ended tasks,
per-site counts) and returns :class:`Finding` s, each with the tasks
involved, the evidence and why it matters.  Nothing here reads a backend,
a socket or the clock: the query layer gathers the inputs
(``_doctor_query.diagnose``), and telnet text, JSON and later the web page render
the same findings their own way.

False positives cost more than misses here: a person at 3 a.m. acts on
these.  Each check reports only what its evidence shows for certain, or says
"probably" where the evidence is inferred.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..backends import EndedTask, FrameInfo, Wait, is_library
from ._locations import format_location
from ._stalls import Stall
from ._trend import GroupTrend

#: Severities, most urgent first: findings are ranked by this order.
SEVERITIES = ("critical", "error", "warning", "info")

#: A task still running this long after its cancellation was requested is
#: swallowing ``CancelledError`` (seconds).
SWALLOW_AFTER = 3.0
#: A creation site with at least this many live tasks, still adding to them
#: and keeping old ones, is reported as a probable leak.
LEAK_MIN_TASKS = 1000
#: "Recent" and "old" for the leak check, in seconds.
LEAK_WINDOW = 60.0
#: At least this share of a leaking site's tasks is recent, and as much is old.
LEAK_SHARE = 0.1
#: Evidence lines per finding, at most (the rest are counted).
MAX_EVIDENCE = 10
#: Stack lines shown per stall.
STALL_STACK_LINES = 6

Edge = tuple[int, int, str]
#: Our own package's frames (a task wrapper) are machinery too.
_OWN_FILES = f"{os.sep}aiomonitor{os.sep}"


@dataclass(frozen=True)
class Finding:
    severity: str
    #: Which check found it: ``deadlock``, ``await-cycle``, ``stall``, ...
    check: str
    #: What is wrong, in one line.
    title: str
    task_ids: tuple[int, ...]
    evidence: tuple[str, ...]
    #: Why it matters, in one line.
    why: str


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Most urgent first; the order of the checks within one severity."""
    return sorted(findings, key=lambda f: SEVERITIES.index(f.severity))


def task_label(task_id: int, names: Mapping[int, str]) -> str:
    name = names.get(task_id)
    return f"task {task_id}" if name is None else f"{name!r} ({task_id})"


def _where(at: FrameInfo | None) -> str:
    return "" if at is None else f" at {format_location(at)}"


def _capped(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_EVIDENCE:
        return tuple(lines)
    return (*lines[:MAX_EVIDENCE], f"... and {len(lines) - MAX_EVIDENCE} more")


# -- deadlocks and await cycles -----------------------------------------------------


def wait_target(wait: Wait, names: Mapping[int, str]) -> str:
    """``asyncio.Lock `self.lock` (locked, 1 waiting)``, or ``task 'b' (2)``."""
    if wait.kind == "task" and wait.awaited_task is not None:
        return f"task {task_label(wait.awaited_task, names)}"
    if wait.kind == "future":
        return "a future"
    return wait.kind + (f" `{wait.binding}`" if wait.binding else "") + (f" ({wait.detail})" if wait.detail else "")


def describe_wait(wait: Wait, names: Mapping[int, str]) -> str:
    """``'a' (1) waits at app.py:3 for asyncio.Lock `self.lock` (locked, 1 waiting)``."""
    return f"{task_label(wait.task_id, names)} waits{_where(wait.at)} for {wait_target(wait, names)}"


def describe_holders(wait: Wait, names: Mapping[int, str]) -> str:
    """``held by 'b' (2) (probably: inside `async with self.lock` at app.py:9)``."""
    parts = []
    for holder in wait.holders:
        how = "its owner" if holder.evidence == "owner" else f"probably: inside `{holder.evidence}`"
        parts.append(f"{task_label(holder.task_id, names)} ({how}{_where(holder.at)})")
    return "held by " + ", ".join(parts) if parts else ""


def wait_graph(waits: Sequence[Wait], await_edges: Iterable[Edge]) -> dict[int, dict[int, str]]:
    """Who waits for whom: task -> {task it waits for: how}.

    A lock wait points at the lock's one holder (with several holders, one
    of them may yet release it: no edge); the other edges are the await
    graph's.  Edges into a task that waits for nothing cannot be on a cycle
    and are left out: a gather or nursery of 100k tasks is 100k such edges.
    """
    edges = list(await_edges)
    lock_edges = [(w.task_id, w.holders[0].task_id) for w in waits if len(w.holders) == 1]
    waiting = {waiter for waiter, _, _ in edges} | {waiter for waiter, _ in lock_edges}
    graph: dict[int, dict[int, str]] = defaultdict(dict)
    for waiter, holder in lock_edges:
        if holder in waiting:
            graph[waiter][holder] = "lock"
    for waiter, awaited, how in edges:
        if awaited in waiting:
            graph[waiter].setdefault(awaited, how)
    return graph


def check_deadlocks(
    cycles: Sequence[list[int]], graph: Mapping[int, Mapping[int, str]], waits: Sequence[Wait], names: Mapping[int, str]
) -> list[Finding]:
    """The *cycles* of the :func:`wait_graph` *graph*: through a lock, a
    deadlock; by awaiting only, an await cycle."""
    by_task = {wait.task_id: wait for wait in waits}
    findings = []
    for cycle in cycles:
        lines = []
        through_lock = False
        for position, task_id in enumerate(cycle):
            target = cycle[(position + 1) % len(cycle)]
            how = graph[task_id][target]
            wait = by_task.get(task_id)
            if how == "lock" and wait is not None:
                through_lock = True
                lines.append(f"{describe_wait(wait, names)}, {describe_holders(wait, names)}")
            else:
                at = _where(wait.at) if wait is not None else ""
                lines.append(f"{task_label(task_id, names)} waits{at} for {task_label(target, names)} [{how}]")
        count = "a task waits for itself" if len(cycle) == 1 else f"{len(cycle)} tasks wait for each other"
        if through_lock:
            findings.append(
                Finding(
                    "critical",
                    "deadlock",
                    f"Deadlock: {count}",
                    tuple(cycle),
                    tuple(lines),
                    "None of them can ever go on, nor can anything waiting for them: cancel one, and take"
                    " locks in one order everywhere.",
                )
            )
        else:
            findings.append(
                Finding(
                    "critical",
                    "await-cycle",
                    f"Await cycle: {count}",
                    tuple(cycle),
                    tuple(lines),
                    "Each awaits the next, so none can ever finish: cancel one of them.",
                )
            )
    return findings


# -- waits nobody can end ------------------------------------------------------------


def check_orphaned_waits(waits: Sequence[Wait], names: Mapping[int, str]) -> list[Finding]:
    """Tasks waiting on a future or event that nothing else refers to, one
    finding per place they wait at."""
    groups: dict[tuple[str, FrameInfo | None], list[Wait]] = defaultdict(list)
    for wait in waits:
        if wait.orphaned:
            groups[(wait.kind, wait.at)].append(wait)
    findings = []
    for (kind, at), group in groups.items():
        what = "an Event" if kind.endswith("Event") else f"a {kind}"
        count = "A task waits" if len(group) == 1 else f"{len(group)} tasks wait"
        findings.append(
            Finding(
                "error",
                "orphaned-wait",
                f"{count}{_where(at)} on {what} nothing else refers to",
                tuple(w.task_id for w in group),
                _capped([describe_wait(w, names) for w in group]),
                "Nothing can ever set it, so they wait forever (a lost wake-up): whatever was to set it dropped it.",
            )
        )
    return findings


def check_swallowed_cancels(
    cancelling: Sequence[tuple[int, float]], now: float, names: Mapping[int, str]
) -> list[Finding]:
    """Tasks asked to cancel at least SWALLOW_AFTER ago that still run:
    *cancelling* is (task id, when the request was made or first seen)."""
    late = [(task_id, now - since) for task_id, since in cancelling if now - since >= SWALLOW_AFTER]
    if not late:
        return []
    lines = [f"{task_label(task_id, names)}: cancellation requested {age:.0f} s ago" for task_id, age in late]
    count = "A task is" if len(late) == 1 else f"{len(late)} tasks are"
    return [
        Finding(
            "warning",
            "swallowed-cancel",
            f"{count} still running long after being cancelled",
            tuple(task_id for task_id, _ in late),
            _capped(lines),
            "A task that catches CancelledError and goes on cannot be stopped: shutdowns and timeouts hang on it.",
        )
    ]


# -- stalls, leaks, errors, slow steps ----------------------------------------------------


def check_stalls(stalls: Sequence[Stall], now: float, names: Mapping[int, str]) -> list[Finding]:
    """The remembered stalls, worst first, each with its stack."""
    if not stalls:
        return []
    worst = sorted(stalls, key=lambda s: s.duration, reverse=True)
    lines: list[str] = []
    for stall in worst[:5]:
        lines.append(stall_line(stall, now))
        lines.extend(f"    {format_location(frame)}" for frame in app_frames(stall.stack)[-STALL_STACK_LINES:])
    if len(worst) > 5:
        lines.append(f"... and {len(worst) - 5} shorter")
    count = "once" if len(stalls) == 1 else f"{len(stalls)} times"
    return [
        Finding(
            "error" if worst[0].duration >= 1.0 else "warning",
            "stall",
            f"The event loop was blocked {count}, for up to {worst[0].duration:.2f} s",
            tuple(s.task_id for s in worst if s.task_id is not None),
            tuple(lines),
            "While the loop is blocked no other task runs: every request, timer and heartbeat waits."
            " Move the blocking call to a thread.",
        )
    ]


def stall_line(stall: Stall, now: float) -> str:
    """``0.40 s, 12 s ago, in 'blocker' (1): sleepy at app.py:12``."""
    who = "" if stall.task_id is None else f" in {stall.task_name!r} ({stall.task_id})"
    where = f": {format_location(stall.stack[-1])}" if stall.stack else ""
    ago = now - (stall.started_monotonic + stall.duration)
    head = f"{stall.duration:.2f} s, {ago:.0f} s ago"
    return f"{head},{who}{where}" if who else f"{head}{where}"


def app_frames(stack: Sequence[FrameInfo]) -> Sequence[FrameInfo]:
    """The innermost run of the app's own frames and what they called: the
    loop's machinery above it (``run``, ``_run_once``, our task wrapper)
    says nothing about the stall."""
    own = [not is_library(frame.filename) and _OWN_FILES not in frame.filename for frame in stack]
    if True not in own:
        return stack
    start = len(own) - 1 - own[::-1].index(True)
    while start > 0 and own[start - 1]:
        start -= 1
    return stack[start:]


@dataclass(frozen=True)
class SiteCount:
    """Live tasks created at one line: how many, how many recently, the oldest's age."""

    site: FrameInfo
    live: int
    recent: int
    old: int
    oldest_age: float


def check_leaks(sites: Sequence[SiteCount]) -> list[Finding]:
    """Creation sites still adding tasks while their old tasks stay alive."""
    findings = []
    for site in sorted(sites, key=lambda s: s.live, reverse=True):
        if site.live < LEAK_MIN_TASKS:
            continue
        if site.recent < LEAK_SHARE * site.live or site.old < LEAK_SHARE * site.live:
            continue
        findings.append(
            Finding(
                "warning",
                "task-leak",
                f"{site.live:,} live tasks created at {format_location(site.site)}, and counting",
                (),
                (
                    f"{site.recent:,} created in the last {LEAK_WINDOW:.0f} s; {site.old:,} older,"
                    f" the oldest {site.oldest_age:.0f} s",
                ),
                "Tasks made faster than they end pile up until memory runs out (ps -s age shows the oldest).",
            )
        )
    return findings


#: A group is "stuck and growing" past this many tasks, over at least this long.
STUCK_GROUP_MIN_TASKS = 10
STUCK_GROUP_MIN_SECONDS = 60.0


def check_stuck_groups(trends: Sequence[GroupTrend]) -> list[Finding]:
    """Groups of alike tasks that only grow while none of their tasks ever leaves
    (the flight recorder's census): a leak, or a wake-up that never comes."""
    findings = []
    for trend in trends:
        if len(trend.counts) < 3 or trend.departures:
            continue
        (first_at, first), (last_at, last) = trend.counts[0], trend.counts[-1]
        grew = all(b[1] >= a[1] for a, b in zip(trend.counts, trend.counts[1:], strict=False))
        if not grew or last < STUCK_GROUP_MIN_TASKS or last <= first or last_at - first_at < STUCK_GROUP_MIN_SECONDS:
            continue
        minutes = (last_at - first_at) / 60
        findings.append(
            Finding(
                "warning",
                "stuck-group",
                f"{last:,} tasks wait at {format_location(trend.location)} ({trend.coro}), more and more,"
                " and none leaves",
                (),
                (
                    f"{first:,} {minutes:.0f} min ago, {last:,} now; not one has moved on or ended meanwhile",
                    "ps --stuck 60 lists them, longest first; trend shows the counts",
                ),
                "Probably a leak or a lost wake-up: whatever should release them never does.",
            )
        )
    return findings


def check_unretrieved(ended: Sequence[EndedTask]) -> list[Finding]:
    """Remembered tasks that raised and were never awaited."""
    lost = [e for e in ended if e.outcome.endswith("(never retrieved)")]
    if not lost:
        return []
    lines = [f"#{e.id} {e.name!r} ({e.coro}): {e.outcome}" for e in reversed(lost)]
    count = "A task" if len(lost) == 1 else f"{len(lost)} tasks"
    return [
        Finding(
            "warning",
            "unretrieved-exception",
            f"{count} ended with an exception nobody awaited",
            (),
            _capped(lines),
            "The error was only logged, and whatever waited for the work never learnt it failed"
            " (where-ended shows each).",
        )
    ]


def check_slow_steps(steps: Sequence[tuple[int, float]], threshold: float, names: Mapping[int, str]) -> list[Finding]:
    """Tasks whose longest step held the loop past *threshold*: (task id, seconds)."""
    slow = sorted((s for s in steps if s[1] >= threshold), key=lambda s: s[1], reverse=True)
    if not slow:
        return []
    lines = [f"{task_label(task_id, names)}: {seconds * 1000:.0f} ms" for task_id, seconds in slow]
    count = "A task has" if len(slow) == 1 else f"{len(slow)} tasks have"
    return [
        Finding(
            "warning",
            "slow-step",
            f"{count} held the loop over {threshold * 1000:.0f} ms in one step",
            tuple(s[0] for s in slow),
            _capped(lines),
            "A step is the code between two awaits: while it runs, nothing else does.",
        )
    ]
