"""An app to dump: tasks waiting on a lock, an event and each other, traced,
with a flight recorder sampling fast; it blocks its loop when told.

``python dumped_app.py DUMP_DIR``: prints ``monitor on 127.0.0.1:PORT`` when
ready.  Each line on stdin: ``block SECONDS`` blocks the loop that long (in
``blocking_call``), ``exit`` ends it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiomonitor


def blocking_call(seconds: float) -> None:
    time.sleep(seconds)  # the blocking line


async def holder(lock: asyncio.Lock, never: asyncio.Event) -> None:
    async with lock:
        await never.wait()  # holder-waits


async def contender(lock: asyncio.Lock) -> None:
    async with lock:  # contender-waits
        pass


async def commands(loop: asyncio.AbstractEventLoop) -> None:
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "exit":
            return
        if line[0] == "block":
            blocking_call(float(line[1]))
            print("unblocked", flush=True)


async def main(dump_dir: str) -> None:
    loop = asyncio.get_running_loop()
    with aiomonitor.start_monitor(
        loop,
        port=0,
        console_enabled=False,
        dump_dir=dump_dir,
        dump_after=0.5,
        trace_tasks=True,
        max_termination_history=20,
        trend_interval=0.2,
    ) as monitor:
        lock, never = asyncio.Lock(), asyncio.Event()
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(holder(lock, never), name="the-holder")]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(contender(lock), name=f"contender-{i}") for i in range(3)]
        tasks += [asyncio.create_task(never.wait(), name=f"sleeper-{i}") for i in range(5)]
        await asyncio.create_task(asyncio.sleep(0), name="ended-quickly")  # released at once: in the history
        print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
        await commands(loop)
        for task in tasks:
            task.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
