"""The flight recorder's bill at scale: memory held, and the app's stall per census.

    python benchmarks/flight_recorder.py [--tasks 100000] [--runs 5]

Each run is a fresh process with N tasks parked at one line (and a tenth of
them at another), and a 1 ms heartbeat on its loop.  It takes censuses
(``TrendRecorder.sample``) from a thread, as the monitor does, and reports:

* the memory the recorder holds after two censuses (``tracemalloc``: what
  it keeps, not what a census allocates and frees), in all and per live task;
* one census's time, and the longest gap the loop's heartbeat saw while
  it ran (the stall), against the same heartbeat with no census (baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from typing import Any

from harness import print_table

CENSUSES = 5


async def heartbeat(gaps: list[float], stop: threading.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def parked(event: asyncio.Event) -> None:
    await event.wait()


async def other(event: asyncio.Event) -> None:
    await event.wait()


async def one_run(tasks: int) -> dict[str, Any]:
    from aiomonitor._query._trend import TrendRecorder
    from aiomonitor.backends import asyncio_backend

    never = asyncio.Event()
    crowd = [asyncio.create_task(parked(never)) for _ in range(tasks - tasks // 10)]
    crowd += [asyncio.create_task(other(never)) for _ in range(tasks // 10)]
    await asyncio.sleep(0.1)
    stop = threading.Event()
    gaps: list[float] = []
    beat = asyncio.create_task(heartbeat(gaps, stop))
    await asyncio.sleep(0.3)
    baseline = max(gaps[-100:])
    backend = asyncio_backend(asyncio.get_running_loop())
    # The snapshot's own memos (frames, chains) are shared with ps: warmed first, not the recorder's.
    await asyncio.to_thread(lambda: [chunk.size for chunk in backend.snapshot_columns()])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    recorder = TrendRecorder(backend, interval=1, window=900)
    for _ in range(2):
        await asyncio.to_thread(recorder.sample)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()  # it slows every allocation: the timings are taken without it
    times, stalls = [], []
    for _ in range(CENSUSES):
        gaps.clear()
        started = time.perf_counter()
        await asyncio.to_thread(recorder.sample)
        times.append(time.perf_counter() - started)
        stalls.append(max(gaps, default=0.0))
    stop.set()
    await beat
    never.set()
    await asyncio.gather(*crowd)
    return {
        "held_bytes": held,
        "census_s": statistics.median(times),
        "stall_ms": statistics.median(stalls) * 1000,
        "worst_stall_ms": max(stalls) * 1000,
        "baseline_ms": baseline * 1000,
    }


def run(python: str, tasks: int, runs: int) -> None:
    figures = []
    for _ in range(runs):
        done = subprocess.run(
            [python, __file__, "--child", str(tasks)], capture_output=True, text=True, check=True, timeout=600
        )
        figures.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def column(key: str) -> list[float]:
        return [float(f[key]) for f in figures]

    held = column("held_bytes")
    rows = [
        ["memory held, MB", f"{statistics.median(held) / 1e6:.1f}", f"{max(held) / 1e6:.1f}"],
        ["memory held per live task, bytes", f"{statistics.median(held) / tasks:.0f}", f"{max(held) / tasks:.0f}"],
        ["one census, s", f"{statistics.median(column('census_s')):.3f}", f"{max(column('census_s')):.3f}"],
        [
            "loop stall per census, ms",
            f"{statistics.median(column('stall_ms')):.1f}",
            f"{max(column('worst_stall_ms')):.1f}",
        ],
        [
            "heartbeat gap without a census, ms",
            f"{statistics.median(column('baseline_ms')):.1f}",
            f"{max(column('baseline_ms')):.1f}",
        ],
    ]
    print_table(f"Flight recorder at {tasks:,} parked asyncio tasks, {runs} runs", ["figure", "median", "worst"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(one_run(args.child))))
        return
    run(sys.executable, args.tasks, args.runs)


if __name__ == "__main__":
    main()
