"""What following a service costs its processes that run no loop.

Under ``aiomonitor run`` (following, the default) every Python process the
program starts imports a start-up hook (``aiomonitor-follow.pth``, then
``aiomonitor._launch._follow``).  A process that never runs a loop must pay
nothing visible: here, fresh interpreters are timed from start to exit with
and without ``$AIOMONITOR_FOLLOW`` set, interleaved, for a process that does
nothing, one that imports asyncio (the hook patches it on import) and one
that imports trio.  The last row, for scale, is a child that does run a loop
and so starts a monitor.

    python benchmarks/follow.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from harness import print_table, spread

CHILDREN = (
    ("nothing", "pass"),
    ("imports asyncio", "import asyncio"),
    ("imports trio", "import trio"),
    ("runs an asyncio loop", "import asyncio; asyncio.run(asyncio.sleep(0))"),
)


def started_and_exited(python: str, code: str, env: dict[str, str]) -> float:
    begin = time.perf_counter()
    subprocess.run([python, "-c", code], env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - begin


def run(python: str, runs: int) -> None:
    plain = {key: value for key, value in os.environ.items() if not key.startswith("AIOMONITOR_")}
    with tempfile.TemporaryDirectory() as registry:
        followed = {
            **plain,
            "AIOMONITOR_RUNTIME_DIR": registry,
            "AIOMONITOR_FOLLOW": json.dumps({"options": {"port": 0, "console_port": 0}}),
        }
        rows = []
        for name, code in CHILDREN:
            samples: dict[str, list[float]] = {"plain": [], "followed": []}
            for _ in range(runs):
                for config, env in (("plain", plain), ("followed", followed)):
                    samples[config].append(started_and_exited(python, code, env))
            base = sorted(samples["plain"])[len(samples["plain"]) // 2]
            for config, values in samples.items():
                median = sorted(values)[len(values) // 2]
                rows.append(
                    [name, config, spread(values, 1000, 1), f"{max(values) * 1000:.1f}", f"{median / base:.2f}"]
                )
    print_table(
        f"Start-up to exit of a service's child process, ms, {runs} runs each (followed: $AIOMONITOR_FOLLOW set)",
        ["child", "config", "median (min-max)", "worst", "ratio"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    run(sys.executable, args.runs)


if __name__ == "__main__":
    main()
