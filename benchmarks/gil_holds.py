"""The monitor's longest GIL holds, per command: where the app's worst stalls come from.

    python benchmarks/gil_holds.py                     # every read-only command, asyncio and trio, 100k tasks
    python benchmarks/gil_holds.py --framework trio --commands "ps,pstree" --runs 3

The app's loop can wait for the GIL at most about one switch interval
behind Python code, which checks for hand-over requests between bytecodes;
one C call (a ``list.extend`` of 100k items, a join driving a ``map`` of
formats, a dict rehashed into fresh memory) never checks, and the loop
waits for all of it.  The stall benchmark (``run.py --only commands``)
shows how long the app waited; this shows what it waited for.

Each command runs in an app with N parked traced tasks whose threads carry
a profile hook.  A C call's cost is the CPU time its thread spent inside
it: calls that wait (``select``, a lock, a socket) release the GIL and cost
no CPU, so they drop out without a list of names.  The hook slows Python
code, never a C call itself; a call that runs Python inside (``map`` of a
Python function) is left out, as that code checks for hand-overs.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

import _app
import harness

#: C calls shorter than this (CPU seconds) are not reported.
FLOOR = 0.001


class HoldRecorder:
    """A ``threading.setprofile`` hook: each C call's CPU time, per call site."""

    def __init__(self) -> None:
        self.holds: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        self._open = threading.local()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        calls: list[list[Any]] | None = getattr(self._open, "calls", None)
        if calls is None:
            calls = self._open.calls = []
        if event == "c_call":
            calls.append([time.thread_time(), False])
        elif event in ("c_return", "c_exception") and calls:
            started, ran_python = calls.pop()
            spent = time.thread_time() - started
            if spent >= FLOOR and not ran_python:
                name = getattr(arg, "__qualname__", None) or repr(arg)
                code = frame.f_code
                site = f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {code.co_name}"
                self.holds[name, site].append(spent)
        elif event == "call":
            for call in calls:  # Python code inside a C call: it hands the GIL over
                call[1] = True

    def take(self) -> list[tuple[float, int, str, str]]:
        """(longest ms, how many, C function, call site), longest first; then forgets them."""
        taken = [(max(spent) * 1000, len(spent), name, site) for (name, site), spent in list(self.holds.items())]
        self.holds.clear()
        return sorted(taken, reverse=True)


def app_main(argv: list[str]) -> None:
    """``_app.py scale`` (parked traced tasks, a monitor), its threads hooked,
    its side channel answering each line with the holds since the last."""
    recorder = HoldRecorder()
    threading.setprofile(recorder)  # the monitor's threads start after this

    def side_channel(_heartbeat: _app.Heartbeat) -> None:
        for _ in sys.stdin:
            print(json.dumps(recorder.take()), flush=True)

    _app.Heartbeat.side_channel = side_channel  # type: ignore[method-assign,assignment]
    sys.argv = [_app.__file__, "scale", *argv]
    _app.main()


def measure(framework: str, tasks: int, commands: list[str], runs: int, shown: int) -> None:
    """Each command *runs* times; its longest holds over all runs."""
    scale = ["--tasks", str(tasks), "--framework", framework, "--trace"]
    app = subprocess.Popen(
        [sys.executable, __file__, "--app", *scale], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert app.stdin is not None
    assert app.stdout is not None
    try:
        info = json.loads(app.stdout.readline())
        client = harness.MonitorClient(info["port"])
        app.stdin.write("\n")  # forget what starting up held
        app.stdin.flush()
        app.stdout.readline()
        rows = []
        for template in commands:
            command = template.replace("ID", str(info["task_id"])).replace("ENDED", str(info["ended_id"]))
            longest: dict[tuple[str, str], tuple[float, int]] = {}
            for _ in range(runs):
                client.timed_top() if command == "top" else client.timed(command)
                app.stdin.write("\n")
                app.stdin.flush()
                for ms, count, name, site in json.loads(app.stdout.readline()):
                    seen_ms, seen_count = longest.get((name, site), (0.0, 0))
                    longest[name, site] = (max(ms, seen_ms), seen_count + count)
            ranked = sorted(longest.items(), key=lambda item: -item[1][0])[:shown] or [(("-", "-"), (0.0, 0))]
            for (name, site), (ms, count) in ranked:
                rows.append([template, f"{ms:.2f}", str(count), name, site])
                template = ""
        client.close()
    finally:
        app.kill()
        app.wait()
    title = f"Longest GIL holds (CPU ms in one C call) per command, {tasks:,} traced {framework} tasks, {runs} runs"
    harness.print_table(title, ["command", "longest ms", "calls >= 1 ms", "C function", "called from"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--framework", choices=["asyncio", "trio"], help="one framework (default: both)")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shown", type=int, default=3, help="holds shown per command")
    parser.add_argument("--commands", help="comma-separated (default: every read-only command)")
    args, scale = parser.parse_known_args()
    if args.app:
        app_main(["--tasks", str(args.tasks), "--framework", args.framework, *scale])
        return
    commands = args.commands.split(",") if args.commands else list(harness.READ_ONLY_COMMANDS)
    for framework in [args.framework] if args.framework else ["asyncio", "trio"]:
        measure(framework, args.tasks, commands, args.runs, args.shown)


if __name__ == "__main__":
    main()
