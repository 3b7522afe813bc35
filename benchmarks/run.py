"""aiomonitor benchmarks: is the monitor invisible when idle, instant at scale?

    python benchmarks/run.py                 # everything (a few minutes)
    python benchmarks/run.py --quick         # fewer repeats and sizes
    python benchmarks/run.py --only scale    # or: idle, recorder, tracing, commands, doctor, concurrency,
                                             #     trio, hostile, web, follow
    python benchmarks/run.py --peer-python /path/to/venv/bin/python   # + aiomonitor 0.7.1, ratios ours/theirs
    python benchmarks/run.py --only commands --baseline-src /tmp/old/src  # ours against an older tree, interleaved
                                             # (also --only concurrency)

Every figure is measured against a baseline in the same run: each sample is
a fresh process, configurations are interleaved, and medians are shown with
min-max.  Ratios come first: time ratio (lower is better; 1.00 = no cost).
The app's loop stall is the longest gap its own 1 ms heartbeat saw.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any, NamedTuple

from harness import (
    READ_ONLY_COMMANDS,
    MonitorClient,
    all_at_once,
    p99_of,
    print_table,
    run_app,
    scale_app,
    spread,
    write_markdown,
)


def live_task_memory(python: str, framework: str, configs: Sequence[str], runs: int, n: int = 100_000) -> None:
    """Bytes per live task, and what tracing adds to each (RSS growth / n)."""
    per_task: dict[str, list[float]] = {config: [] for config in configs}
    for _ in range(runs):
        for config in configs:
            figures = run_app(python, "workload", "live", "--config", config, "--framework", framework, "-n", str(n))
            per_task[config].append(figures["bytes_per_live_task"])
    base = statistics.median(per_task[configs[0]])
    rows = [
        [config, spread(values, digits=0), f"{statistics.median(values) - base:+.0f}"]
        for config, values in per_task.items()
    ]
    title = f"Memory per live task ({framework}, {n:,} tasks parked at once)"
    print_table(title, ["config", "bytes per task median (min-max)", "extra bytes vs base"], rows)


def workload_comparison(
    python: str, framework: str, workloads: Sequence[tuple[str, int]], configs: Sequence[str], runs: int, title: str
) -> None:
    rows = []
    for workload, n in workloads:
        samples: dict[str, list[dict[str, Any]]] = {config: [] for config in configs}
        for _ in range(runs):  # interleaved, so drift hits every configuration alike
            for config in configs:
                args = ["workload", workload, "--config", config, "--framework", framework, "-n", str(n)]
                samples[config].append(run_app(python, *args))
        base_time = statistics.median(s["seconds"] for s in samples[configs[0]])
        base_rss = statistics.median(s["maxrss_kb"] for s in samples[configs[0]])
        for config in configs:
            seconds = [s["seconds"] for s in samples[config]]
            rss = statistics.median(s["maxrss_kb"] for s in samples[config])
            rows.append(
                [
                    f"{workload} ({n:,})",
                    config,
                    f"{statistics.median(seconds) / base_time:.3f}x",
                    spread(seconds),
                    f"{rss / 1024:.1f}",
                    f"{(rss - base_rss) / 1024:+.1f}",
                ]
            )
    print_table(title, ["workload", "config", "time ratio", "seconds median (min-max)", "peak RSS MB", "vs base"], rows)


class ScaleFigures(NamedTuple):
    seconds: list[float]
    megabytes: float
    worst_stall_ms: float
    idle_stall_ms: float


def measure_scale(
    python: str, sizes: Sequence[int], runs: int, framework: str = "asyncio", terminal: bool = False
) -> dict[tuple[int, str], ScaleFigures]:
    """ps and where timings per (size, command), with the app's stalls."""
    figures = {}
    for size in sizes:
        with scale_app(python, size, framework) as app:
            client = MonitorClient(app.port, terminal)
            idle = max(app.stall_during(lambda: time.sleep(0.5))[1] for _ in range(2))
            for command in ("ps", f"where {app.task_id}"):
                samples = [app.stall_during(lambda c=command, cl=client: cl.timed(c)) for _ in range(runs)]
                figures[size, command.split()[0]] = ScaleFigures(
                    seconds=[timing for (timing, _), _ in samples],
                    megabytes=samples[0][0][1] / 1e6,
                    worst_stall_ms=max(stall for _, stall in samples),
                    idle_stall_ms=idle,
                )
            client.close()
    return figures


def print_scale(title: str, figures: dict[tuple[int, str], ScaleFigures]) -> None:
    rows = [
        [
            f"{size:,}",
            command,
            spread(f.seconds),
            f"{f.megabytes:.2f}",
            f"{f.worst_stall_ms:.1f}",
            f"{f.idle_stall_ms:.1f}",
        ]
        for (size, command), f in figures.items()
    ]
    headers = ["tasks", "command", "seconds median (min-max)", "MB sent", "worst stall ms", "idle stall ms"]
    print_table(title, headers, rows)


def print_peer_ratios(ours: dict[tuple[int, str], ScaleFigures], theirs: dict[tuple[int, str], ScaleFigures]) -> None:
    rows = []
    for key, their in theirs.items():
        our = ours[key]
        our_seconds, their_seconds = statistics.median(our.seconds), statistics.median(their.seconds)
        rows.append(
            [
                f"{key[0]:,}",
                key[1],
                f"{our_seconds / their_seconds:.3f}x",
                f"{our_seconds:.3f}",
                f"{their_seconds:.3f}",
                f"{our.worst_stall_ms:.1f}",
                f"{their.worst_stall_ms:.1f}",
            ]
        )
    headers = ["tasks", "command", "ours/theirs", "ours s", "theirs s", "our stall ms", "their stall ms"]
    print_table("Peer: ps and where at scale, ours vs aiomonitor 0.7.1", headers, rows)


def measure_commands(
    python: str, tasks: int, framework: str, runs: int, commands: Sequence[str] = READ_ONLY_COMMANDS
) -> None:
    """Every read-only command at *tasks* traced tasks: answer time and the app's
    loop stall, median and worst, and the garbage collections seen meanwhile."""
    rows = []
    with scale_app(python, tasks, framework, trace=True) as app:
        client = MonitorClient(app.port)
        for template in commands:
            command = template.replace("ID", str(app.task_id)).replace("ENDED", str(app.ended_id))
            timed = client.timed_top if command == "top" else lambda c=client, x=command: c.timed(x)
            samples = [app.measure_during(timed) for _ in range(runs)]
            seconds = [timing for (timing, _), _ in samples]
            stalls = [figures["stall_ms"] for _, figures in samples]
            collections = [sum(f["collections"][g] for _, f in samples) for g in range(3)]
            longest_gc = max(f["longest_collection_ms"] for _, f in samples)
            rows.append(
                [
                    template,
                    spread(seconds),
                    f"{max(seconds):.3f}",
                    f"{statistics.median(stalls):.1f}",
                    f"{max(stalls):.1f}",
                    "/".join(map(str, collections)),
                    f"{longest_gc:.1f}",
                ]
            )
        client.close()
    headers = [
        "command",
        "seconds median (min-max)",
        "worst s",
        "stall ms median",
        "stall ms worst",
        "GCs gen0/1/2",
        "longest GC ms",
    ]
    print_table(f"Every read-only command, {tasks:,} traced {framework} tasks, {runs} runs each", headers, rows)


#: Web requests as the dashboard (or a scraper) makes them (ID: a task's id).
WEB_REQUESTS = (
    "/api/v1/tasks?limit=100",
    "/api/v1/tasks?limit=100&offset=1000",
    "/api/v1/tasks?sort=age&limit=20",
    "/api/v1/tasks/ID",
    "/api/v1/status",
    "/metrics",
    "/api/v1/lag",
    "/api/v1/tasks?filter=parked-5&limit=100",
)


def measure_web(python: str, tasks: int, framework: str, runs: int) -> None:
    """The web API and /metrics at *tasks* traced tasks: answer time and the
    app's loop stall, median and worst, over one kept-alive connection."""
    rows = []
    with scale_app(python, tasks, framework, trace=True, web=True) as app:
        assert app.web_url is not None
        parts = urllib.parse.urlsplit(app.web_url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}

        def fetch(path: str) -> tuple[float, int]:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (path, response.status, body[:200])
            return time.perf_counter() - started, len(body)

        for template in WEB_REQUESTS:
            path = template.replace("ID", str(app.task_id))
            samples = [app.measure_during(lambda p=path: fetch(p)) for _ in range(runs)]
            seconds = [timing for (timing, _), _ in samples]
            stalls = [figures["stall_ms"] for _, figures in samples]
            rows.append(
                [
                    template,
                    spread(seconds),
                    f"{max(seconds):.3f}",
                    f"{samples[0][0][1] / 1000:.1f}",
                    f"{statistics.median(stalls):.1f}",
                    f"{max(stalls):.1f}",
                ]
            )
        conn.close()
    headers_row = ["request", "seconds median (min-max)", "worst s", "kB", "stall ms median", "stall ms worst"]
    print_table(f"Web API at {tasks:,} traced {framework} tasks, {runs} runs each", headers_row, rows)


def stall_recorder_cost(python: str, runs: int) -> None:
    """The always-on stall recorder: the monitor with it against without it,
    on busy workloads, and the CPU an idle app spends on it."""
    configs = ["baseline", "no-recorder", "monitor"]
    for framework in ("asyncio", "uvloop"):
        title = f"Stall recorder, busy ({framework}; no-recorder = stall_threshold=None)"
        workload_comparison(python, framework, [("tasks", 200_000), ("queue", 200_000)], configs, runs, title)
    rows = []
    for framework, workload in (("asyncio", "idle"), ("uvloop", "idle"), ("trio", "trio-idle")):
        samples: dict[str, list[float]] = {config: [] for config in configs}
        for _ in range(runs):
            for config in configs:
                args = ["workload", workload, "--config", config, "--framework", framework, "-n", "5000"]
                samples[config].append(run_app(python, *args)["cpu_seconds"] / 5.0)
        for config in configs:
            per_second = [s * 1000 for s in samples[config]]
            rows.append([framework, config, spread(per_second, digits=2), f"{max(per_second):.2f}"])
    print_table(
        f"CPU of an idle app, ms per second, {runs} runs of 5 s",
        ["framework", "config", "median (min-max)", "worst"],
        rows,
    )


def concurrency(python: str, tasks: int, clients: int, runs: int) -> None:
    """*clients* connected clients send ``ps`` at the same instant, *runs* times.

    One thread serves every client through a selector: fifty client threads
    would compete with the app for this machine's two CPUs and show up as
    the app's stall (earlier figures did, 25-65 ms).
    """
    rows = []
    with scale_app(python, tasks) as app:
        connected = [MonitorClient(app.port) for _ in range(clients)]
        for run in range(runs):
            latencies, stall = app.stall_during(lambda: all_at_once(connected, b"ps"))
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = p99_of(latencies)
            rows.append([f"{run + 1}", f"{len(latencies)}/{clients}", f"{p50:.3f}", f"{p99:.3f}", f"{stall:.1f}"])
        for client in connected:
            client.close()
    p99s = [float(row[3]) for row in rows]
    stalls = [float(row[4]) for row in rows]
    rows.append(["median", "", "", f"{statistics.median(p99s):.3f}", f"{statistics.median(stalls):.1f}"])
    rows.append(["worst", "", "", f"{max(p99s):.3f}", f"{max(stalls):.1f}"])
    headers = ["run", "answered", "p50 s", "p99 s", "app stall ms"]
    print_table(f"Concurrency: {clients} clients send ps at once, {tasks:,} tasks", headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument(
        "--only",
        default="idle,recorder,tracing,scale,commands,doctor,concurrency,trio,hostile,web,follow",
        help="comma-separated scenarios",
    )
    parser.add_argument("--peer-python", help="a python with aiomonitor==0.7.1 installed, to compare against")
    parser.add_argument(
        "--baseline-src",
        help="another aiomonitor source tree (e.g. a git worktree of an older commit: its src directory); "
        "with --only commands or concurrency, each measurement is taken on both, interleaved",
    )
    parser.add_argument("--markdown", help="also write every table to this Markdown file (docs/benchmarks-results.md)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    only = set(args.only.split(","))
    me = sys.executable
    print(f"# aiomonitor benchmarks: {platform.python_implementation()} {platform.python_version()}, ", end="")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {runs} runs per figure")
    small = args.quick
    if "idle" in only:
        workloads = [("tasks", 200_000), ("queue", 200_000), ("tcp", 20_000)]
        for framework in ("asyncio", "uvloop"):
            workload_comparison(
                me, framework, workloads, ["baseline", "monitor", "client"], runs, f"Idle overhead ({framework})"
            )
    if "tracing" in only:
        configs = ["baseline", "traced", "traced-history"]
        for framework in ("asyncio", "uvloop"):
            title = f"Tracing overhead ({framework}; traced = trace_tasks=True, history = max_termination_history=1000)"
            workload_comparison(me, framework, [("tasks", 200_000)], configs, runs, title)
        for framework in ("asyncio", "uvloop"):
            live_task_memory(me, framework, configs, runs)
        workload_comparison(
            me,
            "trio",
            [("trio-tasks", 200_000)],
            ["baseline", "monitor", "traced", "traced-history", "scoped", "traced-scoped"],
            runs,
            "Tracing overhead (trio; scoped = cancellable_tasks=True)",
        )
    sizes = [1_000, 10_000] if small else [1_000, 10_000, 100_000]
    our_scale = {}
    if "scale" in only or args.peer_python:
        our_scale = measure_scale(me, sizes, 3)
        print_scale("ps and where at scale (asyncio)", our_scale)
    if "commands" in only:
        for framework in ("asyncio", "trio"):
            if args.baseline_src:
                import compare

                compare.commands(me, 10_000 if small else 100_000, framework, runs, args.baseline_src)
            else:
                measure_commands(me, 10_000 if small else 100_000, framework, runs)
    if "recorder" in only:
        stall_recorder_cost(me, max(runs, 9))
    if "doctor" in only:
        for framework in ("asyncio", "trio"):
            measure_commands(me, 10_000 if small else 100_000, framework, runs, ("doctor", "where ID", "lag"))
    if "concurrency" in only:
        if args.baseline_src:
            import compare

            compare.concurrency(me, 10_000, 50, max(runs, 10), args.baseline_src)
        else:
            concurrency(me, 10_000, 50, runs)
    if "web" in only:
        for framework in ("asyncio", "trio"):
            measure_web(me, 10_000 if small else 100_000, framework, runs)
    if "trio" in only:
        workloads = [("trio-tasks", 200_000), ("trio-channel", 100_000)]
        configs = ["baseline", "monitor", "scoped", "client"]
        workload_comparison(
            me, "trio", workloads, configs, runs, "Idle overhead (trio; scoped = cancellable_tasks=True)"
        )
        print_scale("ps and where at scale (trio)", measure_scale(me, sizes, 3, "trio"))
    if "hostile" in only:
        import hostile

        hostile.run(me, runs)
    if "follow" in only:
        import follow

        follow.run(me, max(runs, 21))
    if args.peer_python:
        peer = args.peer_python
        workload_comparison(
            peer,
            "asyncio",
            [("tasks", 200_000)],
            ["baseline", "monitor", "traced"],
            runs,
            "Peer: aiomonitor 0.7.1 (traced = hook_task_factory=True)",
        )
        # One run each: its ps takes tens of seconds at 100k tasks.
        print_peer_ratios(our_scale, measure_scale(peer, sizes, 1, terminal=True))
    if args.markdown:
        write_markdown(args.markdown, sys.argv[1:], runs)


if __name__ == "__main__":
    main()
