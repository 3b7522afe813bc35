"""Ours against an older source tree, in the same run: every read-only
command, and fifty clients' ``ps`` at once.

This machine's speed varies by up to 2x from one day (or hour) to the next,
so an answer time measured today says little against one from last week.
Here each round starts one app with the baseline tree and one with ours, and
asks each command of both, one right after the other: the ratio of medians
holds whatever the day.  Used by ``run.py --only commands --baseline-src PATH``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import harness


def commands(
    python: str,
    tasks: int,
    framework: str,
    rounds: int,
    baseline_src: str,
    lines: Sequence[str] = harness.READ_ONLY_COMMANDS,
) -> None:
    """Answer time and the app's loop stall per command, ours and the baseline's."""
    seconds: dict[tuple[str, str], list[float]] = {}
    stalls: dict[tuple[str, str], list[float]] = {}
    collections: dict[tuple[str, str], list[int]] = {}
    versions = (("baseline", baseline_src), ("ours", None))
    for round_number in range(rounds):
        # Both apps at once, each command asked of one right after the other
        # (which first alternates by round): the machine's speed drifts
        # within minutes, and a pair measured seconds apart shares the drift.
        apps: dict[str, harness.ScaleApp] = {}
        try:
            for version, source in versions:
                apps[version] = harness.ScaleApp(python, tasks, framework, trace=True, source=source)
            clients = {version: harness.MonitorClient(app.port) for version, app in apps.items()}
            order = [version for version, _ in versions][:: 1 if round_number % 2 == 0 else -1]
            for template in lines:
                for version in order:
                    app, client = apps[version], clients[version]
                    command = template.replace("ID", str(app.task_id)).replace("ENDED", str(app.ended_id))
                    timed: Any = client.timed_top if command == "top" else (lambda c=client, x=command: c.timed(x))
                    (answer, _), figures = app.measure_during(timed)
                    seconds.setdefault((version, template), []).append(answer)
                    stalls.setdefault((version, template), []).append(figures["stall_ms"])
                    full = collections.setdefault((version, template), [0, 0, 0])
                    for generation in range(3):
                        full[generation] += figures["collections"][generation]
            for client in clients.values():
                client.close()
        finally:
            for app in apps.values():
                app.close()
    rows = []
    for template in lines:
        ours, theirs = seconds["ours", template], seconds["baseline", template]
        rows.append(
            [
                template,
                f"{statistics.median(ours):.3f} ({max(ours):.3f})",
                f"{statistics.median(theirs):.3f} ({max(theirs):.3f})",
                f"{statistics.median(ours) / statistics.median(theirs):.2f}",
                f"{statistics.median(stalls['ours', template]):.1f} / {max(stalls['ours', template]):.1f}",
                f"{max(stalls['baseline', template]):.1f}",
                "/".join(map(str, collections["ours", template])),
            ]
        )
    headers = [
        "command",
        "ours s median (worst)",
        "baseline s median (worst)",
        "time ratio",
        "ours stall ms median / worst",
        "baseline stall worst",
        "ours GCs gen0/1/2",
    ]
    title = f"Every read-only command against the baseline tree, {tasks:,} traced {framework} tasks, {rounds} rounds"
    harness.print_table(title, headers, rows)


def concurrency(python: str, tasks: int, clients: int, rounds: int, baseline_src: str) -> None:
    """*clients* send ``ps`` at once to each tree's app in turn (which first
    alternates by round), both apps alive throughout: p99 answer and stall."""
    figures: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
    apps = {"baseline": harness.ScaleApp(python, tasks, "asyncio", source=baseline_src)}
    try:
        apps["ours"] = harness.ScaleApp(python, tasks, "asyncio")
        connected = {
            version: [harness.MonitorClient(app.port) for _ in range(clients)] for version, app in apps.items()
        }
        for round_number in range(rounds):
            for version in ("baseline", "ours")[:: 1 if round_number % 2 == 0 else -1]:
                latencies, stall = apps[version].stall_during(
                    lambda v=version: harness.all_at_once(connected[v], b"ps")
                )
                latencies.sort()
                figures[version].append((harness.p99_of(latencies), stall))
        for group in connected.values():
            for client in group:
                client.close()
    finally:
        for app in apps.values():
            app.close()
    rows = []
    for version, measured in figures.items():
        p99s, stalls = [p99 for p99, _ in measured], [stall for _, stall in measured]
        rows.append(
            [
                version,
                f"{statistics.median(p99s):.3f} ({max(p99s):.3f})",
                f"{statistics.median(stalls):.1f} / {max(stalls):.1f}",
            ]
        )
    title = f"{clients} clients send ps at once, {tasks:,} tasks, against the baseline tree, {rounds} rounds"
    harness.print_table(title, ["tree", "p99 s median (worst)", "app stall ms median / worst"], rows)
