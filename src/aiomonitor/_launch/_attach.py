"""``aiomonitor attach PID``: a monitor inside a running, unmodified process.

Python 3.14's ``sys.remote_exec`` (PEP 768) asks the target interpreter to
run a script file at its next safe point, in its main thread.  Our script
imports aiomonitor there and starts a Monitor on the asyncio loop that
thread is running; the new monitor registers itself, which is how we learn
its ports.  Both interpreters must be 3.14+, the same user must own both
(and ptrace must be allowed: ``kernel.yama.ptrace_scope``), and the target
must be able to import aiomonitor (we add our own install's path if not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import _registry
from .._registry import PASSWORD_ENV

#: Monitors started in this process by ``attach``, kept alive here: nothing
#: else in the process holds them.  Only ``start_in_running_loop`` adds to it.
_ATTACHED: list[Any] = []

#: How long to wait for the target to reach a safe point and register.
ATTACH_TIMEOUT = 10.0


def start_in_running_loop(options: dict[str, Any]) -> None:
    """Run by the target: a Monitor on this thread's running asyncio loop."""
    from ..monitor import Monitor

    loop = asyncio._get_running_loop()
    if loop is None:
        print("aiomonitor attach: no asyncio loop is running in the main thread; nothing attached", file=sys.stderr)
        return
    monitor = Monitor(loop, **options)
    monitor.start()
    _ATTACHED.append(monitor)


def _script(options: dict[str, Any]) -> str:
    package_parent = str(Path(__file__).resolve().parent.parent)
    return (
        "import sys\n"
        "try:\n"
        "    import aiomonitor._launch._attach as attach\n"
        "except ImportError:\n"
        f"    sys.path.append({package_parent!r})\n"
        "    import aiomonitor._launch._attach as attach\n"
        f"attach.start_in_running_loop({options!r})\n"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aiomonitor attach", description="Start a monitor inside a running asyncio process (Python 3.14+)."
    )
    parser.add_argument("pid", type=int)
    parser.add_argument("--port", type=int, default=0, help="monitor port (default: a free one)")
    parser.add_argument("--console-port", type=int, default=0, help="console port (default: a free one)")
    args = parser.parse_args(argv)
    remote_exec = getattr(sys, "remote_exec", None)
    if remote_exec is None:
        print(
            f"aiomonitor attach needs Python 3.14 or newer (sys.remote_exec, PEP 768) here and in process "
            f"{args.pid}; this is Python {sys.version.split()[0]}.\n"
            "Instead, start the program with a monitor: aiomonitor run -- script.py args...",
            file=sys.stderr,
        )
        return 2
    known = {entry.monitor for entry in _registry.live_entries() if entry.pid == args.pid}
    options = {"port": args.port, "console_port": args.console_port, "password": os.environ.get(PASSWORD_ENV)}
    with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="aiomonitor-attach-", delete=False) as file:
        file.write(_script(options))  # mode 0600: only this user (and the target, the same user) reads it
    try:
        try:
            remote_exec(args.pid, file.name)
        except (OSError, RuntimeError) as exc:
            print(f"aiomonitor attach: cannot reach process {args.pid}: {exc}", file=sys.stderr)
            return 1
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while time.monotonic() < deadline:
            for entry in _registry.live_entries():
                if entry.pid == args.pid and entry.monitor not in known:
                    print(
                        f"attached: pid {args.pid}, monitor on {entry.monitor}; connect with: aiomonitor -P {args.pid}"
                    )
                    return 0
            time.sleep(0.1)  # polling the registry: the target gives no other sign
        print(
            f"aiomonitor attach: process {args.pid} did not start a monitor within {ATTACH_TIMEOUT:g} s "
            "(is it running an asyncio loop in its main thread, and idle enough to reach a safe point?)",
            file=sys.stderr,
        )
        return 1
    finally:
        with contextlib.suppress(OSError):
            os.unlink(file.name)
