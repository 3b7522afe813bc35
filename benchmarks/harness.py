"""What every benchmark shares: the app under test in a process, a telnet
client that reads big answers in O(n), the tables (printed, and kept as
Markdown for the docs), and the read-only commands as a user types them.

Imported by ``run.py``, ``compare.py`` and ``hostile.py``; imports none of them.
"""

from __future__ import annotations

import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    "trend",
    "cost",
    "dump",
)


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
