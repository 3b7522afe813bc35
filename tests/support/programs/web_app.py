"""An app with the web dashboard on a free port, for the web tests.

``python web_app.py asyncio|uvloop|trio [TASKS] [readonly] [control]``: prints one line,
``monitor on 127.0.0.1:PORT web URL``, then runs until stopped.  Its tasks:
``parked-job`` (waits in ``park_here``), ``victim`` (waits to be cancelled;
prints ``victim cancelled`` when it is), ``ticker`` and TASKS extra parked
tasks.  SIGUSR1 blocks its loop for ``BLOCK_SECONDS`` in ``block_the_loop``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import aiomonitor

BLOCK_SECONDS = 4.0
#: With ``control``: only this token may cancel (the printed one only reads).
CONTROL_TOKEN = "control-token-for-tests"
OPTIONS: dict[str, Any] = {
    "port": 0,
    "console_port": 0,
    "web_port": 0,
    "trace_tasks": True,
    "max_termination_history": 100,
    "trend_interval": 0.25,  # the flight recorder's censuses come quickly enough to be seen
}


def block_the_loop() -> None:
    time.sleep(BLOCK_SECONDS)  # the blocking call the banner must show


async def park_here() -> None:
    await asyncio.sleep(3600)


async def victim() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        print("victim cancelled", flush=True)
        raise


async def ticker() -> None:
    while True:
        await asyncio.sleep(0.05)


def announce(monitor: aiomonitor.Monitor) -> None:
    print(f"monitor on 127.0.0.1:{monitor.port} web {monitor.web_url}", flush=True)


async def asyncio_main(extra: int) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, block_the_loop)
    with aiomonitor.start_monitor(loop, **OPTIONS) as monitor:
        tasks = [
            asyncio.create_task(park_here(), name="parked-job"),
            asyncio.create_task(victim(), name="victim"),
            asyncio.create_task(ticker(), name="ticker"),
        ]
        tasks += [asyncio.create_task(park_here(), name=f"extra-{n}") for n in range(extra)]
        announce(monitor)
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(3600)


async def trio_main(extra: int) -> None:
    import trio
    import trio.testing

    async def trio_park_here() -> None:
        await trio.sleep(3600)

    async def trio_victim() -> None:
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            print("victim cancelled", flush=True)
            raise

    async def trio_ticker() -> None:
        while True:
            await trio.sleep(0.05)

    async def blocker() -> None:
        with trio.open_signal_receiver(signal.SIGUSR1) as signals:
            async for _ in signals:
                block_the_loop()

    with aiomonitor.monitor_trio(**OPTIONS) as monitor:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio_park_here, name="parked-job")
            nursery.start_soon(trio_victim, name="victim")
            nursery.start_soon(trio_ticker, name="ticker")
            nursery.start_soon(blocker, name="blocker")
            for n in range(extra):
                nursery.start_soon(trio_park_here, name=f"extra-{n}")
            await trio.testing.wait_all_tasks_blocked()  # each parked where it parks before anyone looks
            announce(monitor)


if __name__ == "__main__":
    framework = sys.argv[1]
    extra = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    OPTIONS["readonly"] = "readonly" in sys.argv[3:]
    if "control" in sys.argv[3:]:
        OPTIONS["web_control_token"] = CONTROL_TOKEN
    if framework == "trio":
        import trio

        trio.run(trio_main, extra)
    elif framework == "uvloop":
        import uvloop

        uvloop.run(asyncio_main(extra))
    else:
        asyncio.run(asyncio_main(extra))
