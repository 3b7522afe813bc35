"""A trio app with aiomonitor attached (needs ``pip install 'aiomonitor[trio]'``).

Connect with ``python -m aiomonitor`` (or ``nc 127.0.0.1 50101``); ``ps`` shows
the task tree, ``cancel <id>`` stops one task without touching its siblings.
"""

from __future__ import annotations

import argparse
import contextlib

import trio

import aiomonitor


async def sleeper(seconds: float) -> None:
    while True:
        await trio.sleep(seconds)


async def handler(number: int) -> None:
    try:
        await trio.sleep_forever()
    finally:
        print(f"handler-{number} cleaned up", flush=True)


async def server() -> None:
    async with trio.open_nursery() as connections:
        for number in range(3):
            connections.start_soon(handler, number, name=f"handler-{number}")


async def main(port: int, console_port: int) -> None:
    with aiomonitor.monitor_trio(port=port, console_port=console_port, locals={"answer": 42}) as monitor:
        print(f"Trio demo running. Connect with: python -m aiomonitor -p {monitor.port}", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server, name="server")
            nursery.start_soon(sleeper, 1, name="heartbeat")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--port", type=int, default=aiomonitor.MONITOR_PORT)
    parser.add_argument("--console-port", type=int, default=aiomonitor.CONSOLE_PORT)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main, args.port, args.console_port)
