"""``aiomonitor run [options] [--] script.py args...`` and ``run [options] -m module args...``.

Runs an unmodified program in this process, as ``python script.py`` would:
the same ``sys.argv``, ``sys.path[0]``, ``__main__``, exit status, signals
and stdin, with nothing written to its stdout.  A monitor starts on the
first event loop the program runs (see ``_autostart``), on free ports unless
told otherwise, and is listed by ``aiomonitor ls``.

Unless ``--no-follow``, so does every process the program starts that runs
a loop, forked or spawned (``_follow``): the workers of uvicorn, gunicorn
and hypercorn are listed under the program, the service.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import runpy
import sys
import time
from typing import Any

from .._registry import CONTROL_PASSWORD_ENV, PASSWORD_ENV, Service, live_entries
from . import _follow
from ._autostart import AutoMonitor, Launch

#: Options that take a value, for finding where the program's own arguments begin.
_VALUE_OPTIONS = frozenset(
    {"--host", "--port", "--console-port", "--history", "--stall-threshold", "--web-port", "--dump-dir", "--dump-after"}
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiomonitor run",
        usage="aiomonitor run [options] [--] script.py [args...]  |  aiomonitor run [options] -m module [args...]",
        description="Run a Python program with a monitor on its event loop (asyncio, uvloop or trio). "
        f"The monitor's passwords, if any, come from ${PASSWORD_ENV} and ${CONTROL_PASSWORD_ENV}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="where the monitor listens (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="monitor port (default: a free one)")
    parser.add_argument("--console-port", type=int, default=0, help="console port (default: a free one)")
    parser.add_argument("--no-console", action="store_true", help="no Python console")
    parser.add_argument("--readonly", action="store_true", help="a read-only monitor: no console, no cancel, no signal")
    parser.add_argument("--trace", action="store_true", help="trace_tasks=True: creation sites, chains, cancellers")
    parser.add_argument("--history", type=int, default=0, metavar="N", help="remember the last N ended tasks")
    parser.add_argument("--timing", action="store_true", help="trace_timing=True: steps and busy time per task")
    parser.add_argument("--stall-threshold", type=float, default=0.1, metavar="S", help="seconds (default: 0.1)")
    parser.add_argument(
        "--web-port", type=int, default=None, metavar="PORT", help="the web dashboard there too (0: a free port)"
    )
    parser.add_argument(
        "--dump-dir",
        metavar="DIR",
        help="write a bundle there when the loop is blocked --dump-after seconds, or tasks deadlock "
        "(aiomonitor open reads it)",
    )
    parser.add_argument("--dump-after", type=float, default=5.0, metavar="S", help="seconds (default: 5)")
    parser.add_argument(
        "--no-follow",
        action="store_true",
        help="monitor this process only, not the workers it starts (forked children still are)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="report to OpenTelemetry, configured by its OTEL_* variables (needs aiomonitor[otel])",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="say on stderr where each monitor listens")
    return parser


def split_arguments(argv: list[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """(our options, script, module, the program's arguments)."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            rest = argv[index + 1 :]
            return argv[:index], (rest[0] if rest else None), None, rest[1:]
        if word == "-m":
            rest = argv[index + 1 :]
            return argv[:index], None, (rest[0] if rest else None), rest[1:]
        if not word.startswith("-") or word == "-":
            return argv[:index], word, None, argv[index + 1 :]
        index += 2 if word in _VALUE_OPTIONS else 1
    return argv, None, None, []


def main(argv: list[str]) -> int:
    parser = _parser()
    ours, script, module, program_args = split_arguments(argv)
    args = parser.parse_args(ours)
    if script is None and module is None:
        parser.error("what to run: a script (aiomonitor run -- app.py) or a module (aiomonitor run -m app)")
    if args.history < 0 or args.stall_threshold <= 0:
        parser.error("--history must be >= 0 and --stall-threshold > 0")
    if args.otel:
        from ..otel import require_otel

        problem = require_otel(sdk=True)
        if problem is not None:
            parser.error(problem)
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "console_port": args.console_port,
        "console_enabled": not args.no_console,
        "readonly": args.readonly,
        "trace_tasks": args.trace or args.history > 0,
        "max_termination_history": args.history,
        "trace_timing": args.timing,
        "stall_threshold": args.stall_threshold,
    }
    if args.web_port is not None:
        options["web_port"] = args.web_port
    if args.dump_dir is not None:
        if args.dump_after <= 0:
            parser.error("--dump-after must be more than 0")
        options.update(dump_dir=os.path.abspath(args.dump_dir), dump_after=args.dump_after)
    _follow.stop_following()  # a run inside a followed service starts a service of its own
    if not args.no_follow:
        name = module if module is not None else os.path.basename(script or "")
        Service(os.getpid(), name, " ".join([name, *program_args]), time.time()).export()
        _follow.export(options, verbose=args.verbose, otel=args.otel)
    on_start = _follow.started_hook(verbose=args.verbose, otel=args.otel)
    launch = Launch({**options, **_follow.launch_secrets()}, on_start)
    auto = AutoMonitor(lambda: launch)
    auto.install()
    try:
        if module is not None:
            sys.argv = [module, *program_args]  # run_module puts the module's file first
            sys.path[0] = os.getcwd()
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            assert script is not None
            if not os.path.exists(script):
                print(f"aiomonitor run: can't open file {script!r}: no such file", file=sys.stderr)
                return 2
            sys.argv = [script, *program_args]
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            runpy.run_path(script, run_name="__main__")
    finally:
        auto.close()
        if not args.no_follow:
            # Workers a signal ended (uvicorn's re-raise the SIGTERM they were
            # stopped with) had no exit handlers to take their entries out:
            # reading the registry deletes those whose process is gone.
            with contextlib.suppress(OSError):
                live_entries()
    return 0
