"""A small asyncio service with aiomonitor attached.

Run it, then connect from another terminal:

    python -m aiomonitor          # our client: line editing, history, completion
    nc 127.0.0.1 50101            # or any telnet/nc

Try ``ps``, ``where <id>``, ``cancel <id>``, ``console`` (then
``await fetch_upstream()`` or ``stats``), ``lag`` and ``help``.  With
``--trace`` (as ``bash scripts/demo`` runs it): ``pstree``, ``ended``,
``where-ended <id>``, ``top busy``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
from typing import Any

import aiomonitor

stats: dict[str, int] = {"jobs_done": 0, "ticks": 0}


async def fetch_upstream() -> str:
    """Pretend to call a slow service."""
    await asyncio.sleep(random.uniform(0.5, 3.0))
    return "upstream says hi"


async def worker(name: str, jobs: asyncio.Queue[int]) -> None:
    while True:
        job = await jobs.get()
        await asyncio.sleep(0.05 * job)
        stats["jobs_done"] += 1
        jobs.task_done()


async def producer(jobs: asyncio.Queue[int]) -> None:
    while True:
        await jobs.put(random.randint(1, 5))
        await asyncio.sleep(0.1)


async def ticker() -> None:
    while True:
        stats["ticks"] += 1
        await asyncio.sleep(1)


async def poll_once() -> None:
    # A short-lived task per poll, given up on when slow: with --trace,
    # `ended` lists them (returned or cancelled, and by whom).
    fetch = asyncio.create_task(fetch_upstream(), name="fetch-upstream")
    done, _ = await asyncio.wait([fetch], timeout=2.0)
    if not done:
        fetch.cancel()
        await asyncio.wait([fetch])


async def poller() -> None:
    while True:
        await poll_once()


class DemoMonitor(aiomonitor.Monitor):
    def do_stats(self) -> None:
        """Show the demo's counters"""
        for key, value in stats.items():
            self._sout.write(f"{key}: {value}\n")


TRY_FIRST_UNTRACED = """Worth trying first:
  ps                  every task: its state, coroutine and where it waits
  where ID            one task's await stack, with source lines (an ID from ps)
  console             a Python REPL inside this app's loop: try `await fetch_upstream()`
  help                every command"""

TRY_FIRST = """Worth trying first (tracing and step timing are on):
  ps                  every task: where it waits, how old, how busy, who made it
  pstree              who waits for whom: the await tree
  where ID            one task's await stack and creation chain (an ID from ps)
  console             a Python REPL inside this app's loop: try `await fetch_upstream()`
  ended               tasks that finished lately, and how (then: where-ended ID)"""


async def main(port: int, console_port: int, **options: Any) -> None:
    loop = asyncio.get_running_loop()
    jobs: asyncio.Queue[int] = asyncio.Queue(maxsize=20)
    with aiomonitor.start_monitor(
        loop,
        monitor=DemoMonitor,
        port=port,
        console_port=console_port,
        locals={"stats": stats, "jobs": jobs, "fetch_upstream": fetch_upstream},
        **options,
    ) as monitor:
        print(f"Demo running. Connect with: python -m aiomonitor -p {monitor.port}", flush=True)
        print(f"  or: nc 127.0.0.1 {monitor.port}   (console: nc 127.0.0.1 {monitor.console_port})", flush=True)
        if monitor.web_url is not None:
            print(f"  or in a browser: {monitor.web_url}", flush=True)
        print(TRY_FIRST if options.get("trace_tasks") else TRY_FIRST_UNTRACED, flush=True)
        async with asyncio.TaskGroup() if hasattr(asyncio, "TaskGroup") else _Group() as group:
            for number in range(3):
                group.create_task(worker(f"worker-{number}", jobs), name=f"worker-{number}")
            group.create_task(producer(jobs), name="producer")
            group.create_task(ticker(), name="ticker")
            group.create_task(poller(), name="upstream-poller")


class _Group:
    """asyncio.TaskGroup's shape on Python 3.10."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> _Group:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*self._tasks)

    def create_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        return task


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--port", type=int, default=aiomonitor.MONITOR_PORT)
    parser.add_argument("--console-port", type=int, default=aiomonitor.CONSOLE_PORT)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument(
        "--trace", action="store_true", help="trace tasks, time their steps and keep the last 500 ended ones"
    )
    parser.add_argument(
        "--web-port", type=int, default=None, help="also serve the web dashboard there (0: a free port; needs [web])"
    )
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.trace:
        options = {"trace_tasks": True, "trace_timing": True, "max_termination_history": 500}
    if args.web_port is not None:
        options["web_port"] = args.web_port
    runner = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main(args.port, args.console_port, **options))
