"""Per-task step timing (opt-in: ``trace_timing=True``).

For each task: how many steps it ran, its total busy time, and its longest
single step (a long step is the loop blocked by that task).  trio reports
steps through its Instrument API; asyncio has no hook, so the task's
coroutine is wrapped in a thin proxy whose send/throw are timed.  That costs
a Python call per step, which is why it is opt-in.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from ._proxy import CoroutineProxy


class StepStats:
    __slots__ = ("busy", "longest", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.busy = 0.0
        self.longest = 0.0

    def add(self, seconds: float) -> None:
        self.steps += 1
        self.busy += seconds
        if seconds > self.longest:
            self.longest = seconds


class TimedCoroutine(CoroutineProxy):
    """A coroutine proxy that times each step of the coroutine it wraps."""

    __slots__ = ("stats",)

    def __init__(self, coro: Any) -> None:
        super().__init__(coro)
        self.stats = StepStats()

    def send(self, value: Any) -> Any:
        started = perf_counter()
        try:
            return self.coro.send(value)
        finally:
            self.stats.add(perf_counter() - started)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        started = perf_counter()
        try:
            if val is None and tb is None:
                return self.coro.throw(typ)
            return self.coro.throw(typ, val, tb)
        finally:
            self.stats.add(perf_counter() - started)


def stats_of(coro: Any) -> StepStats | None:
    """The step stats of a task's coroutine: only the timing proxy has them."""
    return coro.stats if type(coro) is TimedCoroutine else None
