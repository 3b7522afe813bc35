"""How close asyncio tracing is to the least any Python task factory can cost.

Tracing needs, per task, where it was created (a frame), when (a clock) and
by which task (the current task), kept on the task.  This script times the
create/await workload of ``run.py --only tracing`` in one process, the
configurations interleaved round by round, with task factories that do
successively more of that, down to the real tracer:

- ``baseline``: no task factory.
- ``factory``: a Python factory that only makes the task: the price of the
  hook itself (a Python call per task).
- ``subclass``: it makes a slotted subclass of the C Task and fills five slots.
- ``floor``: also reads the app's frame (its code and instruction, at a
  known depth), the clock and the current task into the slots: the least a
  factory can do to know where, when and by whom, with nothing memoised or
  checked, nothing allocated but the timestamp, and the creator kept by a
  strong reference (which a tracer must not do: it would keep ended tasks).
- ``traced``, ``traced-history``: the monitor's tracer, without and with a
  history of 1000 ended tasks.

Each figure is in microseconds per task: the median of the rounds, and the
best and worst.  Rounds rotate the order of the configurations and start
each from a full collection, so none always follows the same garbage.
Ratios are against the baseline, of the medians and of the best runs (on a
shared machine the best run is the one least disturbed).

    python benchmarks/tracing_floor.py [--runs N] [--tasks N] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from harness import print_table, spread

from aiomonitor.backends._asyncio_tracer import AsyncioTracer

BATCH = 1000


class _Slotted(asyncio.Task):  # type: ignore[type-arg]
    __slots__ = ("a", "b", "c", "d", "e")
    a: Any
    b: Any
    c: Any
    d: Any
    e: Any


def _plain_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
    return asyncio.Task(coro, loop=loop, **kwargs)


def _subclass_factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
    task = _Slotted(coro, loop=loop, **kwargs)
    task.a = task.b = task.c = task.d = task.e = None
    return task


def _floor_factory(depth: int) -> Callable[..., Any]:
    getframe, monotonic, current_task = sys._getframe, time.monotonic, asyncio.current_task

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> Any:
        frame = getframe(depth)
        parent = current_task(loop)
        task = _Slotted(coro, loop=loop, **kwargs)
        task.a, task.b, task.c, task.d = frame.f_code, frame.f_lasti, monotonic(), parent
        task.e = None
        return task

    return factory


async def _nop() -> None:
    pass


async def _create_and_await(n: int) -> None:
    for _ in range(n // BATCH):
        batch = [asyncio.create_task(_nop()) for _ in range(BATCH)]
        for task in batch:
            await task


async def _timed(config: str, n: int) -> float:
    loop = asyncio.get_running_loop()
    tracer = None
    # asyncio.create_task -> the loop's create_task (Python on asyncio's
    # loops, C on uvloop's) -> the factory: the app's frame is that deep.
    depth = 3 if isinstance(loop, asyncio.BaseEventLoop) else 2
    factories: dict[str, Any] = {"factory": _plain_factory, "subclass": _subclass_factory}
    if config in factories:
        loop.set_task_factory(factories[config])
    elif config == "floor":
        loop.set_task_factory(_floor_factory(depth))
    elif config.startswith("traced"):
        tracer = AsyncioTracer(loop, 1000 if config == "traced-history" else 0)
    gc.collect()
    started = time.perf_counter()
    await _create_and_await(n)
    elapsed = time.perf_counter() - started
    if tracer is not None:
        tracer.close()
    loop.set_task_factory(None)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    run: Callable[[Coroutine[Any, Any, float]], float] = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run
    configs = ("baseline", "factory", "subclass", "floor", "traced", "traced-history")
    seconds: dict[str, list[float]] = {config: [] for config in configs}
    for round_number in range(args.runs):
        shift = round_number % len(configs)
        for config in configs[shift:] + configs[:shift]:
            seconds[config].append(run(_timed(config, args.tasks)))
    per_task = 1e6 / args.tasks
    base, base_best = statistics.median(seconds["baseline"]), min(seconds["baseline"])
    rows = [
        [
            config,
            spread(values, per_task, 2),
            f"{statistics.median(values) / base:.3f}x",
            f"{min(values) / base_best:.3f}x",
            f"{(min(values) - base_best) * per_task * 1000:+.0f} over the baseline",
        ]
        for config, values in seconds.items()
    ]
    title = f"Tracing against the least a task factory costs ({args.loop}, Python {sys.version.split()[0]})"
    headers = ["config", "us/task median (best-worst)", "ratio of medians", "ratio of best", "ns/task, best"]
    print_table(f"{title}, {args.runs} rounds of {args.tasks:,} tasks", headers, rows)


if __name__ == "__main__":
    main()
