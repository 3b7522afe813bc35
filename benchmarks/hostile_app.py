"""The app the hostile tests and benchmarks/hostile.py attack: a heartbeat, a monitor, a side channel.

It runs a 1 ms heartbeat task (its tick count is how the tests see the app
slow down) and a monitor, prints ``monitor on 127.0.0.1:PORT``, then answers
one-line requests on stdin, each with one line on stdout:

* ``ticks``: heartbeat ticks so far and the monotonic time, "TICKS T".
* ``cpu``: CPU seconds the monitor's own threads have used and the monotonic
  time, "SECONDS T" (threads that ended are not counted).
* ``open N``: open N files in the app, "opened N" or "failed K: error".
* ``chain N`` (asyncio): N tasks, each created by the previous one, which then
  ends; answers "chain ID" with the last task's id once it is running.
* ``rss``: the resident set size in bytes, after a full collection.
* ``fork``: fork a child that sleeps (it keeps what it inherited), "child PID".
* ``close-and-rebind``: close the monitor and bind its port anew, "rebound".
* ``hog`` / ``release``: open files until the process runs out of descriptors
  (keeping them: "hogging N"), then close them ("released").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import aiomonitor


class App:
    def __init__(self) -> None:
        self.ticks = 0
        self.run_in_loop: Callable[[Callable[[], Any]], Any] = lambda func: func()
        self.monitor: aiomonitor.Monitor | None = None
        self.kept: list[Any] = []
        self.hogged: list[Any] = []

    # -- requests, answered from the stdin thread ----------------------------------

    def answer(self, line: str) -> str:
        verb, _, arg = line.partition(" ")
        if verb == "ticks":
            return f"{self.ticks} {time.monotonic()}"
        if verb == "cpu":
            return f"{monitor_cpu()} {time.monotonic()}"
        if verb == "open":
            return open_files(int(arg))
        if verb == "rss":
            return str(self.run_in_loop(rss))
        if verb == "fork":
            return f"child {self.run_in_loop(fork_sleeper)}"
        if verb == "hog":
            with contextlib.suppress(OSError):
                while True:
                    self.hogged.append(open(os.devnull, "rb"))  # noqa: SIM115 - closed by "release"
            return f"hogging {len(self.hogged)}"
        if verb == "release":
            while self.hogged:
                self.hogged.pop().close()
            return "released"
        if verb == "close-and-rebind":
            assert self.monitor is not None
            port = self.monitor.port
            self.monitor.close()
            try:
                socket.create_server(("127.0.0.1", port)).close()
            except OSError as exc:
                return f"failed: {exc}"
            return "rebound"
        if verb == "chain":
            return f"chain {self.run_in_loop(lambda: self.start_chain(int(arg))).result(timeout=120)}"
        return f"unknown request {line!r}"

    def serve_stdin(self) -> None:
        for line in sys.stdin:
            print(self.answer(line.strip()), flush=True)

    # -- asyncio ------------------------------------------------------------------

    def start_chain(self, length: int) -> Any:
        """Tasks that each create the next and end; the last one waits."""
        import concurrent.futures

        loop = asyncio.get_running_loop()
        done: concurrent.futures.Future[int] = concurrent.futures.Future()
        forever = asyncio.Event()

        async def link(remaining: int) -> None:
            if remaining:
                # Unreferenced on purpose: each link must be free to go once it ends.
                loop.create_task(link(remaining - 1))  # noqa: RUF006
                return
            last = asyncio.current_task()
            self.kept.append(last)  # asyncio keeps only weak references to tasks
            done.set_result(id(last))
            await forever.wait()

        loop.create_task(link(length - 1))  # noqa: RUF006 - as above
        return done


def open_files(count: int) -> str:
    files = []
    try:
        for _ in range(count):
            files.append(open(os.devnull, "rb"))  # noqa: SIM115 - closed below
    except OSError as exc:
        return f"failed {len(files)}: {exc}"
    finally:
        for f in files:
            f.close()
    return f"opened {count}"


def monitor_cpu() -> float:
    """CPU seconds of the live threads whose names mark them as the monitor's."""
    spent = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith("aiomonitor") and thread.ident is not None:
            with contextlib.suppress(OSError, ProcessLookupError):
                spent += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return spent


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fork_sleeper() -> int:
    pid = os.fork()
    if pid == 0:  # the child: keep whatever was inherited, for a while
        time.sleep(60)
        os._exit(0)
    return pid


def monitor_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"port": 0, "console_port": 0, "trace_tasks": args.trace}
    if args.password:
        options["password"] = args.password
    if args.max_sessions:
        options["max_sessions"] = args.max_sessions
    return options


def announce(monitor: aiomonitor.Monitor, app: App) -> None:
    app.monitor = monitor
    print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
    threading.Thread(target=app.serve_stdin, daemon=True).start()


async def asyncio_main(args: argparse.Namespace, app: App) -> None:
    loop = asyncio.get_running_loop()

    def run_in_loop(func: Callable[[], Any]) -> Any:
        import concurrent.futures

        result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        loop.call_soon_threadsafe(lambda: result.set_result(func()))
        return result.result(timeout=60)

    app.run_in_loop = run_in_loop
    with aiomonitor.start_monitor(loop, **monitor_options(args)) as monitor:
        announce(monitor, app)
        while True:
            await asyncio.sleep(0.001)
            app.ticks += 1


async def trio_main(args: argparse.Namespace, app: App) -> None:
    import trio

    with aiomonitor.monitor_trio(**monitor_options(args)) as monitor:
        announce(monitor, app)
        while True:
            await trio.sleep(0.001)
            app.ticks += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--framework", choices=("asyncio", "uvloop", "trio"), default="asyncio")
    parser.add_argument("--password")
    parser.add_argument("--max-sessions", type=int)
    parser.add_argument("--nofile", type=int, help="limit the process to this many descriptors")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    app = App()
    if args.framework == "trio":
        import trio

        trio.run(trio_main, args, app)
    elif args.framework == "uvloop":
        import uvloop

        uvloop.run(asyncio_main(args, app))
    else:
        asyncio.run(asyncio_main(args, app))


if __name__ == "__main__":
    main()
