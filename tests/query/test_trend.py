"""The flight recorder: censuses of real tasks over (injected) time, ``ps --stuck``'s
memory of where each task waits, and doctor's stuck groups."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from aiomonitor._query import _diagnosis
from aiomonitor._query._trend import GroupTrend, TrendRecorder
from aiomonitor.backends import FrameInfo, asyncio_backend

from ..support.helpers import in_thread


class Clocks:
    """A monotonic and a wall clock that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_700_000_000


async def parked(event: asyncio.Event) -> None:
    await event.wait()


async def moving(steps: asyncio.Queue[int]) -> None:
    while True:  # a step moves it from one line to the other
        await steps.get()
        await steps.get()


async def test_groups_grow_tasks_stay_stuck_and_moved_tasks_start_over(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("asyncio tasks made by hand; trio's census is the same snapshot (test_services follows hypercorn)")
    clocks = Clocks()
    recorder = TrendRecorder(
        asyncio_backend(asyncio.get_running_loop()),
        interval=5,
        window=60,
        clock=clocks.monotonic,
        wall_clock=clocks.wall,
    )
    never = asyncio.Event()
    steps: asyncio.Queue[int] = asyncio.Queue()
    tasks = [asyncio.create_task(parked(never)) for _ in range(3)]
    mover = asyncio.create_task(moving(steps))
    await asyncio.sleep(0)
    await in_thread(recorder.sample)
    for round_number in range(1, 4):
        clocks.now += 5
        tasks += [asyncio.create_task(parked(never)) for _ in range(3)]
        await asyncio.sleep(0)
        steps.put_nowait(round_number)  # the mover runs: it leaves the line it waited at, and comes back
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await in_thread(recorder.sample)
    trends = {trend.coro: trend for trend in recorder.trends()}
    crowd = trends["parked"]
    assert [count for _, count in crowd.counts] == [3, 6, 9, 12]
    assert crowd.departures == 0 and crowd.change == 9
    assert crowd.since == recorder.samples()[0].at, "grown since the first census"
    assert recorder.trends()[0].coro == "parked", "the largest change first"

    stuck = dict(recorder.iter_stuck(15))
    assert {id(task) for task in tasks[:3]} <= set(stuck), "the first three waited 15 s at one line"
    assert not {id(task) for task in tasks[3:]} & set(stuck), "the later ones have waited less"
    assert stuck[id(tasks[0])] == 15.0
    assert id(mover) not in dict(recorder.iter_stuck(5)), "the mover left its line and started over"
    assert len(recorder.samples()) == 4 and recorder.samples()[-1].total == len(tasks) + 3  # + mover, test, runner
    never.set()
    mover.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def trend(counts: list[int], departures: int = 0, seconds: float = 30.0) -> GroupTrend:
    times = [1000.0 + seconds * index for index in range(len(counts))]
    return GroupTrend(
        "handler", FrameInfo("app.py", 31, "handler"), tuple(zip(times, counts, strict=True)), departures, 1000.0
    )


def test_doctor_reports_a_group_that_only_grows_while_none_leaves() -> None:
    (finding,) = _diagnosis.check_stuck_groups([trend([5, 20, 40, 80])])
    assert finding.check == "stuck-group" and "80 tasks wait at app.py:31 in handler" in finding.title
    assert "leak or a lost wake-up" in finding.why
    assert not _diagnosis.check_stuck_groups([trend([5, 20, 40, 80], departures=1)]), "some leave: it moves"
    assert not _diagnosis.check_stuck_groups([trend([5, 20, 15, 80])]), "it shrank once"
    assert not _diagnosis.check_stuck_groups([trend([1, 2, 3, 4])]), "too few to matter"
    assert not _diagnosis.check_stuck_groups([trend([5, 20, 40, 80], seconds=5)]), "too short a watch"
    assert not _diagnosis.check_stuck_groups([trend([80, 80, 80, 80])]), "not growing"


def test_the_window_keeps_its_number_of_censuses() -> None:
    clocks = Clocks()

    class Nothing:
        def one_look(self) -> object:
            import contextlib

            return contextlib.nullcontext()

        def snapshot_columns(self) -> list[object]:
            return []

    recorder = TrendRecorder(Nothing(), interval=1, window=10, clock=clocks.monotonic, wall_clock=clocks.wall)  # type: ignore[arg-type]
    for _ in itertools.repeat(None, 25):
        clocks.now += 1
        recorder.sample()
    assert len(recorder.samples()) == 10 and recorder.samples()[0].monotonic == clocks.now - 9
