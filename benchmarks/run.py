"""aiomonitor benchmarks: is the monitor invisible when idle, instant at scale?

    python benchmarks/run.py                 # everything (a few minutes)
    python benchmarks/run.py --quick         # fewer repeats and sizes
    python benchmarks/run.py --only scale    # or: idle, recorder, tracing, commands, doctor, concurrency,
                                             #     trio, hostile, web
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
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

APP = str(Path(__file__).with_name("_app.py"))
PROMPT = b"monitor >>> "
IAC, SB, SE, WILL, TTYPE, NAWS, IP = 255, 250, 240, 251, 24, 31, 244
CURSOR_QUERY, CURSOR_REPORT = b"\x1b[6n", b"\x1b[1;1R"


def run_app(python: str, *args: str) -> dict[str, Any]:
    result = subprocess.run([python, APP, *args], capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    median, low, high = (f"{v * scale:.{digits}f}" for v in (statistics.median(values), min(values), max(values)))
    return f"{median} ({low}-{high})"


#: Every table printed in this run, as Markdown, for ``--markdown``.
MARKDOWN_TABLES: list[str] = []


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n## {title}\n")
    for row in (headers, ["-" * w for w in widths], *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    MARKDOWN_TABLES.append("\n".join(lines) + "\n")


def write_markdown(path: str, argv: Sequence[str], runs: int) -> None:
    """The run's tables as a Markdown page: when, on what, and the exact command."""
    when = time.strftime("%Y-%m-%d")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    command = " ".join(["python benchmarks/run.py", *argv])
    head = [
        f"Measured on {when}, on {machine}, with {python}, {runs} runs per figure,",
        f"by `{command}`.",
        "",
    ]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(head) + "\n" + "\n".join(MARKDOWN_TABLES))


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


class MonitorClient:
    """A telnet client in the harness process, reading big outputs in O(n).

    ``terminal=True`` speaks enough telnet to be served by aiomonitor 0.7.1,
    whose prompt_toolkit server waits for a terminal type, redraws its prompt
    with escape codes and asks where the cursor is.
    """

    def __init__(self, port: int, terminal: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.terminal = terminal
        if terminal:
            terminal_type = bytes([IAC, WILL, TTYPE, IAC, SB, TTYPE, 0]) + b"xterm" + bytes([IAC, SE])
            window_size = bytes([IAC, WILL, NAWS, IAC, SB, NAWS, 0, 200, 0, 50, IAC, SE])
            self.sock.sendall(terminal_type + window_size)
        self.read_to_prompt(b"")

    def read_to_prompt(self, after: bytes) -> int:
        """Read until a prompt follows ``after`` (the end of the output)."""
        received = bytearray()
        searched = 0
        end_of_output = 0 if not after else -1
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed; got {bytes(received[-300:])!r}")
            received += chunk
            if not self.terminal:
                if received.endswith(PROMPT):
                    return len(received)
                continue
            if CURSOR_QUERY in chunk:
                self.sock.sendall(CURSOR_REPORT)
            if end_of_output < 0:
                # Re-scan a little before the new chunk: a marker may straddle chunks.
                found = received.find(after, max(0, searched - len(after)))
                end_of_output = found + len(after) if found >= 0 else -1
            searched = len(received)
            if end_of_output >= 0 and received.find(PROMPT, end_of_output) >= 0:
                return len(received)

    def timed(self, line: str) -> tuple[float, int]:
        started = time.perf_counter()
        self.sock.sendall(line.encode() + (b"\r" if self.terminal else b"\r\n"))
        # The peer's ps ends its table with a border line; where, with its last frame.
        size = self.read_to_prompt(b"+\r\n" if line == "ps" else b"\r\n\r\n")
        return time.perf_counter() - started, size

    def timed_top(self) -> tuple[float, int]:
        """One screen of ``top``, then Ctrl-C (telnet IAC IP) to leave it."""
        started = time.perf_counter()
        self.sock.sendall(b"top\r\n")
        received = bytearray()
        while b"leaves" not in received:  # the screen's header line
            received += self.sock.recv(1 << 20)
        self.sock.sendall(bytes([IAC, IP]))
        while not received.endswith(PROMPT):
            received += self.sock.recv(1 << 20)
        return time.perf_counter() - started, len(received)

    def close(self) -> None:
        self.sock.close()


class ScaleApp:
    """An app process with N parked tasks and a stall side channel."""

    def __init__(
        self, python: str, tasks: int, framework: str, trace: bool = False, web: bool = False, source: str | None = None
    ) -> None:
        """*source*: another aiomonitor source tree (its ``src``) to import instead."""
        flags = (["--trace"] if trace else []) + (["--web"] if web else [])
        env = None if source is None else {**os.environ, "PYTHONPATH": source}
        self.process = subprocess.Popen(
            [python, APP, "scale", "--tasks", str(tasks), "--framework", framework, *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.port: int = info["port"]
        self.task_id: int = info["task_id"]
        self.ended_id: int = info["ended_id"]
        self.web_url: str | None = info.get("web_url")

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def stall_during(self, action: Any) -> tuple[Any, float]:
        result, figures = self.measure_during(action)
        stall: float = figures["stall_ms"]
        return result, stall

    def measure_during(self, action: Any) -> tuple[Any, dict[str, Any]]:
        """*action*'s result, and the app's figures meanwhile: stall_ms,
        collections (per generation), longest_collection_ms."""
        self.ask("reset")
        result = action()
        figures: dict[str, Any] = json.loads(self.ask("stall"))
        return result, figures

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@contextmanager
def scale_app(
    python: str, tasks: int, framework: str = "asyncio", trace: bool = False, web: bool = False
) -> Iterator[ScaleApp]:
    app = ScaleApp(python, tasks, framework, trace, web)
    try:
        yield app
    finally:
        app.close()


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


#: Every read-only command, as a user types it (ID / ENDED: filled in per app).
READ_ONLY_COMMANDS = (
    "ps",
    "ps -j",
    "ps -n 20 -s age",
    "ps -s name",
    "ps parked-5",
    "ps -g",
    "pstree",
    "pstree -j",
    "pstree --expand",
    "where ID",
    "ended",
    "where-ended ENDED",
    "top",
    "who",
    "lag",
    "stacktrace",
    "doctor",
)


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


def p99_of(ordered: Sequence[float]) -> float:
    """The 99th percentile of *ordered* (sorted) figures: the worst of fewer than 100."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def all_at_once(clients: Sequence[MonitorClient], line: bytes) -> list[float]:
    """Send *line* on every client's socket at once; each one's seconds to its next prompt."""
    started = time.perf_counter()
    for client in clients:
        client.sock.sendall(line + b"\r\n")
    received = {client.sock: bytearray() for client in clients}
    latencies: list[float] = []
    with selectors.DefaultSelector() as selector:
        for sock in received:
            selector.register(sock, selectors.EVENT_READ)
        while received:
            for key, _ in selector.select():
                sock = key.fileobj  # type: ignore[assignment]  # the sockets registered above
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("a client was disconnected")
                buffer = received[sock]
                buffer += chunk
                if buffer.endswith(PROMPT):
                    latencies.append(time.perf_counter() - started)
                    selector.unregister(sock)
                    del received[sock]
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument(
        "--only",
        default="idle,recorder,tracing,scale,commands,doctor,concurrency,trio,hostile,web",
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
            ["baseline", "no-cancel", "traced-no-cancel", "traced", "traced-history"],
            runs,
            "Tracing overhead (trio)",
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
        configs = ["baseline", "monitor", "no-cancel", "client"]
        workload_comparison(me, "trio", workloads, configs, runs, "Idle overhead (trio)")
        print_scale("ps and where at scale (trio)", measure_scale(me, sizes, 3, "trio"))
    if "hostile" in only:
        import hostile

        hostile.run(me, runs)
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
