"""What the monitor's own objects cost an app through the cyclic collector.

A started monitor imports its modules (and anyio's, and some of the
standard library's): about ten thousand objects the collector tracks and
walks at every full collection for as long as the process lives.  An app
that makes and drops tasks quickly triggers many full collections, so it
pays for those objects whether or not anyone is watching.  This script
times the create/await workload of ``run.py --only tracing`` (200,000 tasks)
in fresh processes, interleaved, with:

- ``baseline``: ``aiomonitor`` imported (as in ``run.py``), nothing started;
- ``anyio``: plus anyio, the one core dependency;
- ``imported``: plus every module a started monitor imports, not started;
- ``monitor``: a monitor started with the default options;
- ``monitor, frozen``: the same, then ``gc.freeze()`` (every object so far
  moved out of the collector's sight): what is left without the walks.

Each row gives seconds (median, best-worst), the ratio of medians, the
objects the collector tracks when the workload starts, and the full
collections during it.

    python benchmarks/gc_weight.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from harness import print_table, spread

HERE = str(Path(__file__).parent)

#: A child (run in this directory, so ``_app`` imports): sets up as the
#: configuration says, runs the workload, prints figures.
CHILD = """
import asyncio, gc, importlib, json, time
import aiomonitor
from _app import WORKLOADS
config, modules = {config!r}, {modules!r}
full = [0]
def count(phase, info):
    if phase == "start" and info["generation"] == 2:
        full[0] += 1
async def main():
    if config == "anyio":
        import anyio
    elif config == "imported":
        for name in modules:
            importlib.import_module(name)
    started = None
    if config.startswith("monitor"):
        started = aiomonitor.start_monitor(asyncio.get_running_loop(), port=0, console_port=0)
        if config == "monitor, frozen":
            gc.freeze()
    objects = len(gc.get_objects())
    gc.callbacks.append(count)
    begin = time.perf_counter()
    await WORKLOADS["tasks"](200_000)
    seconds = time.perf_counter() - begin
    gc.callbacks.remove(count)
    if started is not None:
        started.close()
    return seconds, objects
seconds, objects = asyncio.run(main())
print(json.dumps({{"seconds": seconds, "objects": objects, "full": full[0]}}))
"""

#: Prints the modules a started monitor imports beyond ``import aiomonitor``.
MODULES = """
import asyncio, json, sys
import aiomonitor
before = set(sys.modules)
async def main():
    with aiomonitor.start_monitor(asyncio.get_running_loop(), port=0, console_port=0):
        await asyncio.sleep(0)
        return sorted(set(sys.modules) - before)
print(json.dumps(asyncio.run(main())))
"""

CONFIGS = ("baseline", "anyio", "imported", "monitor", "monitor, frozen")


def child(python: str, code: str) -> object:
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300, check=True, cwd=HERE)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    modules = child(sys.executable, MODULES)
    figures: dict[str, list[dict[str, float]]] = {config: [] for config in CONFIGS}
    for _ in range(args.runs):  # interleaved, so drift hits every configuration alike
        for config in CONFIGS:
            code = CHILD.format(config=config, modules=modules)
            figures[config].append(child(sys.executable, code))  # type: ignore[arg-type]
    base = statistics.median(run["seconds"] for run in figures["baseline"])
    rows = []
    for config, runs in figures.items():
        seconds = [run["seconds"] for run in runs]
        rows.append(
            [
                config,
                spread(seconds),
                f"{statistics.median(seconds) / base:.3f}x",
                f"{statistics.median(run['objects'] for run in runs):,.0f}",
                f"{statistics.median(run['full'] for run in runs):.0f}",
            ]
        )
    title = f"The collector's walks over the monitor's objects (Python {sys.version.split()[0]}), {args.runs} runs"
    headers = ["config", "seconds median (best-worst)", "ratio", "tracked objects", "full collections"]
    print_table(title, headers, rows)


if __name__ == "__main__":
    main()
