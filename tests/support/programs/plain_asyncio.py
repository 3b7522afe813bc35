"""A plain asyncio program that knows nothing of aiomonitor (for ``aiomonitor run``).

Prints its argv and ``__name__``, parks a named task, reads one line from
stdin, echoes it, and exits with the status given as its first argument.
"""

import asyncio
import sys


async def main() -> None:
    parked = asyncio.create_task(asyncio.sleep(3600), name="plain-parked")
    print("argv", sys.argv[1:], __name__, flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print("read", line.strip(), flush=True)
    parked.cancel()
    sys.exit(int(sys.argv[1]))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "uvloop":
        import uvloop

        uvloop.install()
    asyncio.run(main())
