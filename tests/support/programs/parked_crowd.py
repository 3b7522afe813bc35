"""An app with N traced tasks parked on one line, monitored on a free port.

``python parked_crowd.py asyncio|trio N``: prints ``monitor on PORT`` once
every task is parked, then waits until its stdin closes.
"""

from __future__ import annotations

import asyncio
import sys

import aiomonitor


async def parked(ready: asyncio.Event, forever: asyncio.Event) -> None:
    ready.set()
    await forever.wait()  # parked-here


async def asyncio_main(count: int) -> None:
    loop = asyncio.get_running_loop()
    with aiomonitor.start_monitor(loop, port=0, console_enabled=False, trace_tasks=True) as monitor:
        forever = asyncio.Event()
        last = asyncio.Event()
        tasks = [asyncio.create_task(parked(asyncio.Event(), forever), name=f"crowd-{i}") for i in range(count - 1)]
        tasks.append(asyncio.create_task(parked(last, forever), name=f"crowd-{count - 1}"))
        await last.wait()
        print(f"monitor on {monitor.port}", flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        forever.set()
        await asyncio.gather(*tasks)


async def trio_main(count: int) -> None:
    import trio

    async def trio_parked(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()  # parked-here

    with aiomonitor.monitor_trio(port=0, console_enabled=False, trace_tasks=True) as monitor:
        async with trio.open_nursery() as nursery:
            for i in range(count - 1):
                nursery.start_soon(trio_parked, name=f"crowd-{i}")
            await nursery.start(trio_parked, name=f"crowd-{count - 1}")
            print(f"monitor on {monitor.port}", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    framework, count = sys.argv[1], int(sys.argv[2])
    if framework == "trio":
        import trio

        trio.run(trio_main, count)
    else:
        asyncio.run(asyncio_main(count))
