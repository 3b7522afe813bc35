"""Hostile and careless clients: what they cost the app (``run.py --only hostile``).

The attacks are the ones ``tests/scenarios/test_hostile.py`` checks (from
``attacks.py``); here each is repeated and reported as median and
worst, next to its bar from issue 15.
"""

from __future__ import annotations

import socket
import statistics
import time

from attacks import (
    PASSWORD,
    attackers,
    flood,
    guess,
    hostile_app,
    idle_connections,
    log_in,
)
from harness import MonitorClient, print_table, scale_app, spread


def flood_ratios(framework: str, runs: int) -> tuple[list[float], list[float], list[float]]:
    """Heartbeat under a reconnecting pre-auth flood / without; connections dropped per
    second; the share of a core the monitor's threads used under it."""
    ratios, rates, shares = [], [], []
    for _ in range(runs):
        with hostile_app("--framework", framework, "--password", PASSWORD) as app:
            baseline = app.tick_rate(2.0)
            hung_up: list[int] = []
            with attackers(flood, 1, app.port, hung_up):
                flooded = app.tick_rate(2.0)
                shares.append(app.monitor_cpu_share(1.0))
            ratios.append(flooded / baseline)
            rates.append(len(hung_up) / 3.0)
    return ratios, rates, shares


def guesses_answered(seconds: float) -> int:
    with hostile_app("--password", PASSWORD) as app:
        answered: list[int] = []
        with attackers(guess, 8, app.port, answered):
            time.sleep(seconds)  # the attack's length
        return len(answered)


def operator_behind_idle_crowd(runs: int) -> list[float]:
    """Seconds from 1,000 idle connections to the operator's first ps answer."""
    seconds = []
    for _ in range(runs):
        options = ("--password", PASSWORD, "--max-sessions", "4", "--nofile", "1024")
        with hostile_app(*options) as app, idle_connections(app.port, 1000):
            started = time.perf_counter()
            with log_in(app.port) as operator:
                operator.command("ps -n 1")
            seconds.append(time.perf_counter() - started)
    return seconds


def slow_reader(python: str, tasks: int, runs: int) -> tuple[list[float], list[float], list[float]]:
    """Another client's ``ps -n 3``, alone and while one client never reads its ``ps``:
    seconds alone, seconds beside the stuck one, the app's stall (ms)."""
    alone, beside, stalls = [], [], []
    with scale_app(python, tasks) as app:
        other = MonitorClient(app.port)
        for _ in range(runs):
            alone.append(other.timed("ps -n 3")[0])
            with socket.socket() as stuck:
                stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stuck.connect(("127.0.0.1", app.port))
                stuck.sendall(b"ps\r\n")
                stuck.settimeout(60)
                # Its output has started (so its ps is computed, and now waits on the socket):
                while b"Task" not in stuck.recv(1 << 16, socket.MSG_PEEK):
                    time.sleep(0.01)
                (elapsed, _), stall = app.stall_during(lambda: other.timed("ps -n 3"))
            beside.append(elapsed)
            stalls.append(stall)
        other.close()
    return alone, beside, stalls


def run(python: str, runs: int) -> None:
    rows = []
    for framework in ("asyncio", "uvloop", "trio"):
        ratios, rates, shares = flood_ratios(framework, runs)
        rows.append(
            [
                framework,
                spread(ratios, digits=2),
                f"{min(ratios):.2f}",
                f"{statistics.median(rates):.0f}",
                spread(shares, digits=2),
                f"{max(shares):.2f}",
            ]
        )
    headers = ["framework", "heartbeat ratio", "worst", "drops/s", "monitor CPU (cores)", "worst"]
    print_table("Pre-auth flood: the app's 1 ms heartbeat under it / without (bar >= 0.9)", headers, rows)

    answered = guesses_answered(5.0)
    print_table("Password guessing: 8 guessers for 5 s (bar <= 150)", ["wrong guesses answered"], [[str(answered)]])

    waits = operator_behind_idle_crowd(runs)
    rows = [[spread(waits, digits=2), f"{max(waits):.2f}"]]
    print_table("1,000 idle connections, then the operator's ps (bar <= 10 s)", ["seconds", "worst"], rows)

    alone, beside, stalls = slow_reader(python, 100_000, runs)
    rows = [[spread(alone), spread(beside), f"{max(beside):.3f}", spread(stalls, digits=1), f"{max(stalls):.1f}"]]
    headers = ["alone s", "beside it s", "worst", "app stall ms", "worst"]
    print_table("A client that never reads its ps at 100k tasks; another's ps -n 3 (bar <= 1 s)", headers, rows)
