"""A program that starts children every way Python does (for ``aiomonitor run``).

Children: a ``multiprocessing`` spawn child running asyncio, a forkserver
child running trio, a ``ProcessPoolExecutor`` (spawn) worker that never
runs a loop, and ``subprocess`` Python that never runs a loop either.  Each
child that runs a loop parks a task named after how it was started.  Prints
``ready`` once every child is up, then waits for a line on stdin and exits 0.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor


def asyncio_child(ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        parked = asyncio.create_task(asyncio.sleep(3600), name="parked-in-spawn-child")
        ready.set()
        await parked

    asyncio.run(main())


def trio_child(ready: multiprocessing.synchronize.Event) -> None:
    import trio

    async def parked_in_forkserver_child() -> None:
        await trio.sleep(3600)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parked_in_forkserver_child)
            ready.set()

    trio.run(main)


def square(number: int) -> int:
    return number * number


def main() -> None:
    spawn, forkserver = multiprocessing.get_context("spawn"), multiprocessing.get_context("forkserver")
    children = []
    for context, target in ((spawn, asyncio_child), (forkserver, trio_child)):
        ready = context.Event()
        child = context.Process(target=target, args=(ready,), daemon=True)
        child.start()
        children.append(child)
        if not ready.wait(60):
            sys.exit(f"the {context.get_start_method()} child did not start")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(square, 7).result(timeout=60) == 49
        subprocess.run([sys.executable, "-c", "print('no loop here')"], check=True, capture_output=True)
        print("ready", flush=True)
        sys.stdin.readline()
    for child in children:
        child.terminate()
        child.join(15)


if __name__ == "__main__":
    main()
