"""doctor's checks as pure functions: cycles, deadlocks, orphans, leaks,
swallowed cancels, stalls; with no sockets, and no false positives."""

from __future__ import annotations

import asyncio.base_events
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aiomonitor._query import _diagnosis
from aiomonitor._query._cycles import cycles
from aiomonitor._query._stalls import Stall
from aiomonitor.backends import FrameInfo, Holder, Wait

HERE = FrameInfo("/srv/app/jobs.py", 10, "work")
THERE = FrameInfo("/srv/app/jobs.py", 20, "other")


def lock_wait(task: int, target: int, holder: int | None, at: FrameInfo = HERE) -> Wait:
    holders = () if holder is None else (Holder(holder, "async with self.lock", THERE, True),)
    return Wait(task, "asyncio.Lock", target, "self.lock", at, "locked, 1 waiting", holders)


def deadlocks(waits: list[Wait], edges: list[tuple[int, int, str]], names: dict[int, str]) -> list[_diagnosis.Finding]:
    graph = _diagnosis.wait_graph(waits, edges)
    return _diagnosis.check_deadlocks(cycles(graph), graph, waits, names)


def is_acyclic(graph: dict[int, dict[int, str]]) -> bool:
    state: dict[int, int] = {}

    def visit(node: int) -> bool:  # small graphs only: recursion is fine here
        if state.get(node) == 1:
            return False
        if state.get(node) == 2:
            return True
        state[node] = 1
        ok = all(visit(n) for n in graph.get(node, {}))
        state[node] = 2
        return ok

    return all(visit(n) for n in list(graph))


@given(st.dictionaries(st.integers(0, 8), st.sets(st.integers(0, 8), max_size=3), max_size=9))
def test_cycles_are_real_and_found_exactly_when_there_are_some(edges: dict[int, set[int]]) -> None:
    graph = {node: dict.fromkeys(targets, "await") for node, targets in edges.items()}
    found = cycles(graph)
    assert bool(found) == (not is_acyclic(graph))
    for cycle in found:
        for position, node in enumerate(cycle):
            assert cycle[(position + 1) % len(cycle)] in graph[node]
        assert len(set(cycle)) == len(cycle)


def test_two_tasks_on_two_locks_in_opposite_order_are_a_deadlock() -> None:
    waits = [lock_wait(1, 100, 2), lock_wait(2, 200, 1)]
    (finding,) = deadlocks(waits, [], {1: "transfer", 2: "audit"})
    assert finding.check == "deadlock" and finding.severity == "critical"
    assert set(finding.task_ids) == {1, 2}
    assert "'transfer' (1) waits at /srv/app/jobs.py:10 in work" in finding.evidence[0]
    assert "held by 'audit' (2) (probably: inside `async with self.lock`" in finding.evidence[0]


def test_a_task_waiting_for_a_lock_it_holds_is_a_deadlock_on_itself() -> None:
    (finding,) = deadlocks([lock_wait(7, 100, 7)], [], {})
    assert finding.title == "Deadlock: a task waits for itself"


def test_waiting_for_a_busy_lock_is_not_a_deadlock() -> None:
    waits = [lock_wait(1, 100, 2), lock_wait(3, 100, 2)]  # 2 holds it and runs on
    assert deadlocks(waits, [(4, 1, "await")], {}) == []


def test_a_lock_with_several_possible_holders_makes_no_edge() -> None:
    two = Wait(1, "asyncio.Semaphore", 5, None, HERE, "", (Holder(2, "x", None, True), Holder(3, "x", None, True)))
    assert deadlocks([two, lock_wait(2, 6, 1)], [], {}) == []


def test_an_await_cycle_is_reported_as_such() -> None:
    (finding,) = deadlocks([], [(1, 2, "await"), (2, 1, "gather")], {})
    assert finding.check == "await-cycle" and "[await]" in finding.evidence[0]


def test_orphaned_waits_are_grouped_by_place_and_others_ignored() -> None:
    orphan = Wait(1, "future", 9, None, HERE, "", orphaned=True)
    twin = Wait(2, "future", 10, None, HERE, "", orphaned=True)
    kept = Wait(3, "future", 11, None, HERE, "")
    (finding,) = _diagnosis.check_orphaned_waits([orphan, twin, kept], {})
    assert finding.task_ids == (1, 2) and finding.title.startswith("2 tasks wait at")


def test_swallowed_cancels_need_the_full_delay() -> None:
    now = 100.0
    assert _diagnosis.check_swallowed_cancels([(1, now - 2.9)], now, {}) == []
    (finding,) = _diagnosis.check_swallowed_cancels([(1, now - 3.0), (2, now)], now, {1: "stubborn"})
    assert finding.task_ids == (1,)


def test_a_leak_needs_many_tasks_both_new_and_old() -> None:
    steady = _diagnosis.SiteCount(HERE, live=5000, recent=0, old=5000, oldest_age=600)  # made once, at start
    churn = _diagnosis.SiteCount(HERE, live=5000, recent=5000, old=0, oldest_age=30)  # short-lived
    few = _diagnosis.SiteCount(HERE, live=999, recent=500, old=499, oldest_age=600)
    leak = _diagnosis.SiteCount(THERE, live=5000, recent=1000, old=4000, oldest_age=900)
    (finding,) = _diagnosis.check_leaks([steady, churn, few, leak])
    assert "jobs.py:20" in finding.title


def test_stalls_are_listed_worst_first_from_the_apps_own_frames() -> None:
    machinery = FrameInfo(asyncio.base_events.__file__, 1922, "_run_once")
    blocking = FrameInfo("/srv/app/jobs.py", 12, "blocking_call")
    short = Stall(0.0, 10.0, 0.15, 1, "a", (machinery, HERE), 2, 2)
    long = Stall(0.0, 20.0, 1.5, 2, "b", (machinery, HERE, blocking), 30, 29)
    (finding,) = _diagnosis.check_stalls([short, long], 30.0, {})
    assert finding.severity == "error"  # over a second
    assert finding.evidence[0].startswith("1.50 s, 8 s ago, in 'b' (2): /srv/app/jobs.py:12 in blocking_call")
    assert not any("_run_once" in line for line in finding.evidence)
    assert _diagnosis.check_stalls([], 30.0, {}) == []


def test_findings_rank_by_severity() -> None:
    info = _diagnosis.Finding("info", "x", "", (), (), "")
    critical = _diagnosis.Finding("critical", "y", "", (), (), "")
    assert _diagnosis.ranked([info, critical]) == [critical, info]


def _decorated(function: Any) -> Any:
    return function


@_decorated
async def _holds_two(box: Any) -> None:
    async with box.first:
        async with box.second, box.third:
            pass


def test_async_with_blocks_are_found_for_decorated_functions_and_nested_blocks() -> None:
    from aiomonitor.backends._waits import async_with_blocks

    blocks = async_with_blocks(_holds_two.__code__)
    assert sorted(block.text for block in blocks) == ["box.first", "box.second", "box.third"]
    outer = next(block for block in blocks if block.text == "box.first")
    inner = next(block for block in blocks if block.text == "box.second")
    assert outer.first_line < inner.first_line <= inner.last_line <= outer.last_line
    assert async_with_blocks(test_async_with_blocks_are_found_for_decorated_functions_and_nested_blocks.__code__) == ()
