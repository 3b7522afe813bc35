"""A plain trio program that knows nothing of aiomonitor (for ``aiomonitor run``)."""

import sys

import trio


async def main(status: int) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever, name="plain-parked")
        print("argv", sys.argv[1:], __name__, flush=True)
        line = await trio.to_thread.run_sync(sys.stdin.readline)
        print("read", line.strip(), flush=True)
        nursery.cancel_scope.cancel()
    sys.exit(status)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
