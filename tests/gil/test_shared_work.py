"""SharedWork: heavy computations one at a time, shared by identical requests that wait together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from aiomonitor._gil._shared_work import SharedWork

from ..support.helpers import DEADLINE, poll


def run_in_threads(count: int, target: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = []

    def one() -> None:
        try:
            results.append(target())
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def hold_the_turn(work: SharedWork) -> tuple[threading.Event, threading.Thread]:
    """Occupy the work queue with an unshared computation until released."""
    started, release = threading.Event(), threading.Event()

    def busy() -> None:
        started.set()
        release.wait(10)

    thread = threading.Thread(target=work.run, args=(busy,))
    thread.start()
    assert started.wait(10)
    return release, thread


def test_identical_requests_waiting_together_share_one_run() -> None:
    work = SharedWork()
    release, holder = hold_the_turn(work)
    runs: list[int] = []

    def compute() -> str:
        runs.append(1)
        return "snapshot"

    threads, results = run_in_threads(8, lambda: work.run(compute, key="ps"))
    # All eight are queued (one leader waiting for the turn, seven joined it).
    assert poll(lambda: "ps" in work._waiting and sum(t.is_alive() for t in threads) == 8)
    release.set()
    for thread in [holder, *threads]:
        thread.join(10)
    assert runs == [1]
    assert results == ["snapshot"] * 8


def test_a_request_never_gets_a_result_that_started_before_it_arrived() -> None:
    work = SharedWork()
    inside, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            release.wait(10)
        return len(calls)

    first, first_results = run_in_threads(1, lambda: work.run(compute, key="ps"))
    assert inside.wait(10)  # the first run is computing now
    second, second_results = run_in_threads(1, lambda: work.run(compute, key="ps"))
    assert poll(lambda: "ps" in work._waiting)  # the newcomer started a batch of its own
    release.set()
    for thread in first + second:
        thread.join(10)
    assert first_results == [1]
    assert second_results == [2]


def test_different_keys_are_not_shared_and_errors_reach_every_waiter() -> None:
    work = SharedWork()
    release, holder = hold_the_turn(work)

    def fail() -> None:
        raise LookupError("no task 7")

    failing, failures = run_in_threads(3, lambda: work.run(fail, key=("where", 7)))
    other, others = run_in_threads(1, lambda: work.run(lambda: "tree", key="pstree"))
    assert poll(lambda: len(work._waiting) == 2)
    release.set()
    for thread in [holder, *failing, *other]:
        thread.join(10)
    assert [type(f) for f in failures] == [LookupError] * 3
    assert others == ["tree"]


def test_unkeyed_work_runs_each_time() -> None:
    work = SharedWork()
    assert [work.run(lambda: 1), work.run(lambda: 2)] == [1, 2]
    with pytest.raises(ZeroDivisionError):
        work.run(lambda: 1 / 0)


def test_a_relay_wakes_every_waiter_once_set_and_each_wait_after() -> None:
    """Waiters wake one after another (``_relay``), but every one of them wakes."""
    from aiomonitor._gil._relay import Relay

    relay = Relay()
    woken: list[bool] = []
    waiters = [threading.Thread(target=lambda: woken.append(relay.wait(DEADLINE))) for _ in range(8)]
    for waiter in waiters:
        waiter.start()
    assert not relay.is_set() and woken == []
    relay.set()
    for waiter in waiters:
        waiter.join(DEADLINE)
    assert woken == [True] * 8 and relay.is_set()
    assert relay.wait(0) and relay.wait()  # set stays set


def test_a_relay_never_set_times_out() -> None:
    from aiomonitor._gil._relay import Relay

    relay = Relay()
    assert relay.wait(0.01) is False and relay.wait(-1) is False and not relay.is_set()
