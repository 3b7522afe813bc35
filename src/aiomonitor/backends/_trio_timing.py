"""``trace_timing`` for trio: the Instrument API reports every task step."""

from __future__ import annotations

from time import perf_counter
from typing import Any

import trio

from ._timing import StepStats


class StepTimer(trio.abc.Instrument):
    """trace_timing for trio: the Instrument API reports every task step."""

    def __init__(self) -> None:
        self.stats: dict[Any, StepStats] = {}
        self._started = 0.0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        stats = self.stats.get(task)
        if stats is None:
            stats = self.stats[task] = StepStats()
        stats.add(perf_counter() - self._started)

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.stats.pop(task, None)
