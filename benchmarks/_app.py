"""The app under test for benchmarks/run.py, one measurement per process.

``workload``: run one workload under one configuration, print JSON figures.
``scale``: park N tasks with a monitor attached, report through stdin/stdout
(a side channel that works whatever monitor is installed, the peer's too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

BATCH = 1000
# Figures a workload adds to its process's JSON line (one process per measurement).
EXTRA_FIGURES: dict[str, float] = {}


async def asyncio_tasks(n: int) -> None:
    async def nop() -> None:
        pass

    for _ in range(n // BATCH):
        batch = [asyncio.create_task(nop()) for _ in range(BATCH)]
        for task in batch:
            await task


async def asyncio_queue(n: int) -> None:
    there: asyncio.Queue[int] = asyncio.Queue()
    back: asyncio.Queue[int] = asyncio.Queue()

    async def echo() -> None:
        for _ in range(n):
            back.put_nowait(await there.get())

    echoer = asyncio.create_task(echo())
    for i in range(n):
        there.put_nowait(i)
        await back.get()
    await echoer


async def asyncio_tcp(n: int) -> None:
    handler_done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(64):
            writer.write(data)
        writer.close()
        handler_done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(n):
        writer.write(b"x" * 32)
        await reader.readexactly(32)
    writer.close()
    # Let the handler see EOF and finish, so the run ends without a
    # cancelled handler task (and its noise on stderr).
    await handler_done.wait()
    server.close()
    await server.wait_closed()


async def trio_tasks(n: int) -> None:
    import trio

    async def nop() -> None:
        pass

    for _ in range(n // BATCH):
        async with trio.open_nursery() as nursery:
            for _ in range(BATCH):
                nursery.start_soon(nop)


async def trio_channel(n: int) -> None:
    import trio

    there_send, there_receive = trio.open_memory_channel[int](1)
    back_send, back_receive = trio.open_memory_channel[int](1)

    async def echo() -> None:
        for _ in range(n):
            await back_send.send(await there_receive.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        for i in range(n):
            await there_send.send(i)
            await back_receive.receive()


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def asyncio_live(n: int) -> None:
    """n tasks alive at once: the memory each one costs (tracing's per-task record)."""
    release = asyncio.Event()

    async def parked() -> None:
        await release.wait()

    gc.collect()
    before = resident_bytes()
    tasks = [asyncio.create_task(parked()) for _ in range(n)]
    await asyncio.sleep(0)  # every task takes its first step
    gc.collect()
    EXTRA_FIGURES["bytes_per_live_task"] = (resident_bytes() - before) / n
    release.set()
    await asyncio.gather(*tasks)


async def asyncio_idle(n: int) -> None:
    """An app with nothing to do for n ms: what the monitor costs it in CPU."""
    started = time.process_time()
    await asyncio.sleep(n / 1000)
    EXTRA_FIGURES["cpu_seconds"] = time.process_time() - started


async def trio_idle(n: int) -> None:
    import trio

    started = time.process_time()
    await trio.sleep(n / 1000)
    EXTRA_FIGURES["cpu_seconds"] = time.process_time() - started


WORKLOADS: dict[str, Callable[[int], Awaitable[None]]] = {
    "idle": asyncio_idle,
    "trio-idle": trio_idle,
    "live": asyncio_live,
    "tasks": asyncio_tasks,
    "queue": asyncio_queue,
    "tcp": asyncio_tcp,
    "trio-tasks": trio_tasks,
    "trio-channel": trio_channel,
}


def idle_client(port: int) -> None:
    """A connected client that reads the greeting, then just sits there."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.recv(65536)
    threading.Thread(target=sock.recv, args=(1,), daemon=True).start()


def monitor_options(config: str) -> dict[str, Any]:
    """Options for a configuration, for our monitor or (--peer) aiomonitor 0.7.1."""
    import aiomonitor

    options: dict[str, Any] = {"port": 0, "console_port": 0}
    if not hasattr(aiomonitor, "monitor_trio"):  # the peer: no ephemeral ports, a web UI
        options = {"port": free_port(), "console_port": free_port(), "webui_port": free_port()}
        if config.startswith("traced"):
            options["hook_task_factory"] = True
        return options
    if config.startswith("traced"):
        options.update(trace_options(config))
    if config == "no-recorder":  # the monitor without its stall recorder
        options["stall_threshold"] = None
    return options


def trace_options(config: str) -> dict[str, Any]:
    """traced: trace_tasks=True as it comes; traced-history: plus a history of 1000."""
    history = 1000 if config.endswith("-history") else 0
    return {"trace_tasks": True, "max_termination_history": history}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def run_asyncio_workload(name: str, n: int, config: str) -> float:
    import aiomonitor

    if config == "baseline":
        started = time.perf_counter()
        await WORKLOADS[name](n)
        return time.perf_counter() - started
    options = monitor_options(config)
    with aiomonitor.start_monitor(asyncio.get_running_loop(), **options) as monitor:
        if config == "client":
            idle_client(getattr(monitor, "port", options["port"]) or options["port"])
        started = time.perf_counter()
        await WORKLOADS[name](n)
        return time.perf_counter() - started


async def run_trio_workload(name: str, n: int, config: str) -> float:
    import aiomonitor

    if config == "baseline":
        started = time.perf_counter()
        await WORKLOADS[name](n)
        return time.perf_counter() - started
    # "scoped": a cancel scope per task (cancellable_tasks=True); the default has none.
    options: dict[str, Any] = {"port": 0, "console_port": 0, "cancellable_tasks": config.endswith("scoped")}
    if config == "no-recorder":
        options["stall_threshold"] = None
    if config.startswith("traced"):
        options.update(trace_options(config.removesuffix("-scoped")))
    with aiomonitor.monitor_trio(**options) as monitor:
        if config == "client":
            idle_client(monitor.port)
        started = time.perf_counter()
        await WORKLOADS[name](n)
        return time.perf_counter() - started


def workload_main(args: argparse.Namespace) -> None:
    if args.framework == "trio":
        import trio

        seconds = trio.run(run_trio_workload, args.workload, args.n, args.config)
    else:
        runner = asyncio.run
        if args.framework == "uvloop":
            import uvloop

            runner = uvloop.run
        seconds = runner(run_asyncio_workload(args.workload, args.n, args.config))
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "maxrss_kb": rss_kb, **EXTRA_FIGURES}), flush=True)


class Heartbeat:
    """The app's own view of stalls: the longest gap between 1 ms sleeps, and
    the garbage collections (per generation, and the longest pause) meanwhile."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.collections = [0, 0, 0]
        self.longest_collection = 0.0
        self._collection_started = 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collection_started = time.perf_counter()
            return
        self.collections[info["generation"]] += 1
        self.longest_collection = max(self.longest_collection, time.perf_counter() - self._collection_started)

    def side_channel(self) -> None:  # a thread: answers even while the loop is stuck
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                self.worst = 0.0
                self.collections = [0, 0, 0]
                self.longest_collection = 0.0
                print("ok", flush=True)
            elif command == "stall":
                figures = {
                    "stall_ms": self.worst * 1000,
                    "collections": self.collections,
                    "longest_collection_ms": self.longest_collection * 1000,
                }
                print(json.dumps(figures), flush=True)


async def ended_task_id() -> int:
    """A task that has ended and been released, so the history holds it."""

    async def short() -> None:
        pass

    task = asyncio.create_task(short(), name="short-lived")
    await task
    task_id = id(task)
    del task
    gc.collect()
    return task_id


async def scale_main(args: argparse.Namespace) -> None:
    import aiomonitor

    heartbeat = Heartbeat()
    options = monitor_options("traced-history" if args.trace else "monitor")
    if args.web:
        options["web_port"] = 0
    with aiomonitor.start_monitor(asyncio.get_running_loop(), **options) as monitor:
        # Created after the monitor started, so tracing sees them.
        parked = [asyncio.create_task(asyncio.sleep(3600), name=f"parked-{i}") for i in range(args.tasks)]
        await asyncio.sleep(0.5)  # let every task take its first step before measuring
        ended_id = await ended_task_id()

        async def beat() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                heartbeat.worst = max(heartbeat.worst, time.perf_counter() - started - 0.001)

        beater = asyncio.create_task(beat())
        port = getattr(monitor, "port", None) or options["port"]
        info: dict[str, Any] = {"port": port, "task_id": id(parked[len(parked) // 2]), "ended_id": ended_id}
        info["web_url"] = getattr(monitor, "web_url", None)
        print(json.dumps(info), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, heartbeat.side_channel)
    beater.cancel()


async def trio_scale_main(args: argparse.Namespace) -> None:
    import trio

    import aiomonitor

    heartbeat = Heartbeat()

    async def beat() -> None:
        while True:
            started = time.perf_counter()
            await trio.sleep(0.001)
            heartbeat.worst = max(heartbeat.worst, time.perf_counter() - started - 0.001)

    options: dict[str, Any] = {"port": 0, "console_port": 0}
    if args.trace:
        options.update(trace_options("traced-history"))
    if args.web:
        options["web_port"] = 0
    async with trio.open_nursery() as nursery:
        with aiomonitor.monitor_trio(**options) as monitor:
            # Spawned after the monitor started, as an app's tasks mostly are
            # (every one is cancellable alone, whenever it was spawned).
            for i in range(args.tasks):
                nursery.start_soon(trio.sleep, 3600, name=f"parked-{i}")
            await trio.sleep(0.5)  # let every task take its first step before measuring
            parked = [task for task in nursery.child_tasks if task.name.startswith("parked-")]
            ended: list[int] = []

            async def short() -> None:
                ended.append(id(trio.lowlevel.current_task()))

            async with trio.open_nursery() as short_lived:
                short_lived.start_soon(short, name="short-lived")
            nursery.start_soon(beat)
            info: dict[str, Any] = {"port": monitor.port, "task_id": id(parked[len(parked) // 2])}
            info.update(ended_id=ended[0], web_url=monitor.web_url)
            print(json.dumps(info), flush=True)
            await trio.to_thread.run_sync(heartbeat.side_channel)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    workload = sub.add_parser("workload")
    workload.add_argument("workload", choices=sorted(WORKLOADS))
    workload.add_argument("--config", default="baseline")
    workload.add_argument("--framework", default="asyncio", choices=["asyncio", "uvloop", "trio"])
    workload.add_argument("-n", type=int, default=200_000)
    scale = sub.add_parser("scale")
    scale.add_argument("--tasks", type=int, default=10_000)
    scale.add_argument("--framework", default="asyncio", choices=["asyncio", "trio"])
    scale.add_argument("--trace", action="store_true", help="trace_tasks with a history of 1000")
    scale.add_argument("--web", action="store_true", help="also the web dashboard, on a free port")
    args = parser.parse_args()
    if args.mode == "workload":
        workload_main(args)
    elif args.framework == "trio":
        import trio

        trio.run(trio_scale_main, args)
    else:
        asyncio.run(scale_main(args))


if __name__ == "__main__":
    main()
