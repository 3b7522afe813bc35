"""A sick app for doctor's tests: ``python tests/support/doctor_app.py asyncio|uvloop|trio [healthy]``.

It blocks its loop for 0.4 s in a named task 2 s before any client can
connect (the stall recorder must remember it), then two tasks take two
locks in opposite order and deadlock, and one task waits forever on a lock
the other holds.  With ``healthy`` it only runs busy, well-behaved tasks.
Prints ``monitor on 127.0.0.1:PORT`` once the stall is over and the
deadlock is set up.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiomonitor

#: How long after the stall the app lets anyone connect: it must be remembered.
QUIET_AFTER_STALL = 2.0


def blocking_call() -> None:
    time.sleep(0.4)  # the stall doctor must name


class Accounts:
    def __init__(self, lock_type: Any) -> None:
        self.ledger_lock = lock_type()
        self.audit_lock = lock_type()


class Meeting:
    """An event set once both deadlocking tasks have arrived (asyncio's or trio's Event)."""

    def __init__(self, event_type: Any) -> None:
        self.all_here = event_type()
        self._arrived = 0

    def arrive(self) -> None:
        self._arrived += 1
        if self._arrived == 2:
            self.all_here.set()


async def transfer(accounts: Accounts, holding: Meeting, reaching: Meeting) -> None:
    async with accounts.ledger_lock:
        holding.arrive()
        await holding.all_here.wait()
        # Arriving and parking on the lock happen in one step (no checkpoint
        # between): once both have arrived, both are parked for good.
        reaching.arrive()
        async with accounts.audit_lock:
            pass


async def audit(accounts: Accounts, holding: Meeting, reaching: Meeting) -> None:
    async with accounts.audit_lock:
        holding.arrive()
        await holding.all_here.wait()
        reaching.arrive()
        async with accounts.ledger_lock:
            pass


async def asyncio_main(healthy: bool) -> None:
    loop = asyncio.get_running_loop()
    with aiomonitor.start_monitor(loop, port=0, console_port=0) as monitor:
        if healthy:
            await asyncio_healthy(monitor)
            return
        blocker = asyncio.create_task(asyncio.to_thread(lambda: None), name="warm-up")
        await blocker

        async def stall_maker() -> None:
            blocking_call()

        await asyncio.create_task(stall_maker(), name="stall-maker")
        await asyncio.sleep(QUIET_AFTER_STALL)
        accounts = Accounts(asyncio.Lock)
        holding, reaching = Meeting(asyncio.Event), Meeting(asyncio.Event)
        stuck = [
            asyncio.create_task(transfer(accounts, holding, reaching), name="transfer"),
            asyncio.create_task(audit(accounts, holding, reaching), name="audit"),
        ]
        await reaching.all_here.wait()  # both parked on each other's lock
        print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
        await asyncio.gather(*stuck)


async def asyncio_healthy(monitor: aiomonitor.Monitor) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10)
    lock = asyncio.Lock()
    stop = asyncio.Event()

    async def producer() -> None:
        for n in range(1_000_000):
            await queue.put(n)
            await asyncio.sleep(0.001)

    async def consumer() -> None:
        while True:
            await queue.get()
            async with lock:
                await asyncio.sleep(0.002)

    async with asyncio.TaskGroup() if hasattr(asyncio, "TaskGroup") else _Group() as group:
        group.create_task(producer(), name="producer")
        for n in range(3):
            group.create_task(consumer(), name=f"consumer-{n}")
        group.create_task(stop.wait(), name="waiting-for-shutdown")
        print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)


class _Group:  # Python 3.10 has no TaskGroup
    async def __aenter__(self) -> _Group:
        self.tasks: list[asyncio.Task[Any]] = []
        return self

    def create_task(self, coro: Any, name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*self.tasks)


async def trio_main(healthy: bool) -> None:
    import trio

    with aiomonitor.monitor_trio(port=0, console_port=0) as monitor:
        async with trio.open_nursery() as nursery:
            if healthy:
                send, receive = trio.open_memory_channel[int](10)
                lock = trio.Lock()

                async def producer() -> None:
                    for n in range(1_000_000):
                        await send.send(n)
                        await trio.sleep(0.001)

                async def consumer() -> None:
                    async for _ in receive:
                        async with lock:
                            await trio.sleep(0.002)

                nursery.start_soon(producer, name="producer")
                for n in range(3):
                    nursery.start_soon(consumer, name=f"consumer-{n}")
                print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
                return

            async def stall_maker() -> None:
                blocking_call()

            nursery.start_soon(stall_maker, name="stall-maker")
            await trio.sleep(QUIET_AFTER_STALL)
            accounts = Accounts(trio.Lock)
            holding, reaching = Meeting(trio.Event), Meeting(trio.Event)
            nursery.start_soon(transfer, accounts, holding, reaching, name="transfer")
            nursery.start_soon(audit, accounts, holding, reaching, name="audit")
            await reaching.all_here.wait()  # both parked on each other's lock
            print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
            await trio.sleep(3600)


if __name__ == "__main__":
    framework = sys.argv[1]
    healthy = sys.argv[2:] == ["healthy"]
    if framework == "trio":
        import trio

        trio.run(trio_main, healthy)
    elif framework == "uvloop":
        import uvloop

        uvloop.run(asyncio_main(healthy)) if hasattr(uvloop, "run") else uvloop.install() or asyncio.run(
            asyncio_main(healthy)
        )
    else:
        asyncio.run(asyncio_main(healthy))
