"""The query layer and Submission.wait, without sockets: pure logic over a fake backend."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomonitor._query import _queries as _query
from aiomonitor.backends import (
    MONITOR_TASK_NAME,
    Backend,
    CancelOutcome,
    FrameInfo,
    Interrupted,
    LoopUnresponsive,
    Submission,
    TaskSnapshot,
    UnknownTask,
)


class FakeBackend(Backend):
    """Serves fixed snapshots; never runs anything."""

    framework = "asyncio"

    def __init__(self, tasks: list[TaskSnapshot]) -> None:
        self.tasks = tasks

    def call_soon(self, callback: Callable[[], None]) -> None:
        pass  # a loop that never runs anything: a blocked one

    def heartbeat(self, interval: float, beat: Callable[[], None]) -> Callable[[], None]:
        return lambda: None  # never beats: a blocked loop

    def loop_thread_id(self) -> int | None:
        return None

    def snapshot(self) -> Iterator[TaskSnapshot]:
        return iter(self.tasks)

    def task_count(self) -> int:
        return len(self.tasks)

    def stack(self, task_id: int) -> list[FrameInfo]:
        if all(t.id != task_id for t in self.tasks):
            raise UnknownTask(task_id)
        return [FrameInfo("app.py", 3, "main")]

    def current_task_id(self) -> int | None:
        return None

    def cancel(self, task_id: int, grace: float) -> CancelOutcome:
        raise NotImplementedError

    def submit(self, async_fn: Callable[[], Awaitable[Any]]) -> Submission:
        return Submission()


def snap(task_id: int, name: str, state: str = "pending", created_at: float | None = None) -> TaskSnapshot:
    return TaskSnapshot(task_id, name, state, "coro", FrameInfo("/srv/app.py", task_id, "f"), created_at=created_at)


TASKS = [snap(3, "poller", created_at=5.0), snap(1, "worker-a", created_at=9.0), snap(2, "worker-b")]


def test_a_selection_counts_all_matching_and_shown() -> None:
    selection = _query.select_tasks(FakeBackend(TASKS), _query.TaskQuery(filters=("worker",), limit=1))
    shown = list(selection)
    assert [t.name for t in shown] == ["worker-a"]
    assert (selection.total, selection.matched, selection.shown) == (3, 2, 1)


def test_sorting_by_age_puts_untraced_tasks_last() -> None:
    selection = _query.select_tasks(FakeBackend(TASKS), _query.TaskQuery(sort="age"))
    assert [t.name for t in selection] == ["poller", "worker-a", "worker-b"]


def test_a_selection_is_consumed_once() -> None:
    selection = _query.select_tasks(FakeBackend(TASKS))
    list(selection)
    with pytest.raises(RuntimeError, match="once"):
        list(selection)


def test_bad_queries_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="Sort by one of"):
        _query.TaskQuery(sort="size")
    with pytest.raises(ValueError, match="0 or more"):
        _query.TaskQuery(limit=-1)


@given(st.lists(st.text(max_size=6), max_size=3), st.none() | st.integers(0, 5))
def test_any_filter_and_limit_keep_counts_consistent(filters: list[str], limit: int | None) -> None:
    query = _query.TaskQuery(tuple(f.lower() for f in filters), None, limit)
    selection = _query.select_tasks(FakeBackend(TASKS), query)
    shown = list(selection)
    assert selection.total == len(TASKS)
    assert selection.shown == len(shown) <= selection.matched <= selection.total
    assert all(_query.task_matches(t, query.filters) for t in shown)


def test_task_detail_and_unknown_tasks() -> None:
    detail = _query.task_detail(FakeBackend(TASKS), 2)
    assert detail.stack == (FrameInfo("app.py", 3, "main"),)
    assert detail.record is None and detail.canceller is None
    with pytest.raises(UnknownTask):
        _query.task_detail(FakeBackend(TASKS), 99)


def test_the_history_being_off_is_a_distinct_answer() -> None:
    with pytest.raises(_query.HistoryOff):
        _query.ended_tasks(FakeBackend(TASKS))
    with pytest.raises(_query.HistoryOff):
        _query.find_ended(FakeBackend(TASKS), "1")


def test_a_submission_the_loop_never_starts_is_withdrawn() -> None:
    submission = Submission()
    with pytest.raises(LoopUnresponsive, match=r"did not respond within 0\.05 s"):
        submission.wait(0.05)
    assert submission.future.cancelled()  # withdrawn: a late loop will not run it


def test_ctrl_c_before_the_loop_starts_the_work_withdraws_it_at_once() -> None:
    submission = Submission()
    interrupted = threading.Event()
    interrupted.set()
    with pytest.raises(Interrupted):
        submission.wait(60.0, interrupted)
    assert submission.future.cancelled()


def test_ctrl_c_while_the_work_runs_cancels_it() -> None:
    submission = Submission()
    cancelled = threading.Event()
    submission._cancel = cancelled.set
    submission.started.set_result(None)
    submission.future.set_running_or_notify_cancel()
    interrupted = threading.Event()
    interrupted.set()
    with pytest.raises(Interrupted):
        submission.wait(0.05, interrupted)
    assert cancelled.is_set()


def test_a_submission_returns_its_result_or_raises_its_exception() -> None:
    done = Submission()
    done.started.set_result(None)
    done.future.set_result(42)
    assert done.wait(1.0) == 42
    failed = Submission()
    failed.future.set_exception(ValueError("boom"))  # ended before it was seen starting
    with pytest.raises(ValueError, match="boom"):
        failed.wait(1.0)
    cancelled = Submission()
    cancelled.future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        cancelled.wait(1.0)


def test_run_sync_on_a_blocked_loop_raises_and_never_runs_later() -> None:
    backend = FakeBackend([])
    ran = []
    with pytest.raises(LoopUnresponsive):
        backend.run_sync(lambda: ran.append(1), timeout=0.05)
    assert ran == []


@given(st.lists(st.tuples(st.integers(0, 5), st.integers()), max_size=300), st.none() | st.integers(0, 50))
def test_gentle_sorting_is_sorted_and_stable(items: list[tuple[int, int]], limit: int | None) -> None:
    from aiomonitor._gil import _passes as _gil

    _gil.SORT_CHUNK, saved = 7, _gil.SORT_CHUNK  # small chunks, so the merge path runs
    try:
        result = list(_gil.sorted_gently(items, lambda item: item[0], limit))
    finally:
        _gil.SORT_CHUNK = saved
    expected = sorted(items, key=lambda item: item[0])
    assert result == (expected if limit is None else expected[:limit])


@given(st.integers(0, 200), st.integers(1, 200), st.randoms(use_true_random=False))
def test_sorting_by_id_in_ranges_is_a_sort_by_id(count: int, distinct: int, random: Any) -> None:
    """Tiny runs: many ranges and splitters; an object may come more than
    once.  Distinct objects are never sorted more than two runs at once."""
    from aiomonitor._gil import _passes as _gil

    objects = [object() for _ in range(distinct)]
    if distinct >= count:
        items = objects[:count]
        random.shuffle(items)
    else:
        items = [random.choice(objects) for _ in range(count)]
    sorted_sizes: list[int] = []

    def recording_sorted(iterable: Any, **options: Any) -> Any:
        listed = list(iterable)
        sorted_sizes.append(len(listed))
        return sorted(listed, **options)

    saved = _gil.SORT_CHUNK
    _gil.SORT_CHUNK = 7  # small runs: many ranges, odd counts included
    _gil.sorted = recording_sorted  # type: ignore[attr-defined]
    try:
        result = list(_gil.sorted_by_id(items))
    finally:
        _gil.SORT_CHUNK = saved
        del _gil.sorted  # type: ignore[attr-defined]
    assert result == sorted(items, key=id)
    if distinct >= count:
        assert max(sorted_sizes, default=0) <= 2 * 7


@pytest.mark.parametrize("trace", [False, True])
def test_the_first_few_without_a_full_snapshot_are_the_same_tasks(trace: bool) -> None:
    import asyncio

    from aiomonitor.backends import asyncio_backend

    async def scenario() -> None:
        backend = asyncio_backend(asyncio.get_running_loop(), trace=trace)
        backend.attach()
        try:
            forever = asyncio.Event()
            tasks = [asyncio.create_task(forever.wait(), name=f"t{i}") for i in range(50)]
            await asyncio.sleep(0)
            same_first_few(backend)
            forever.set()
            await asyncio.gather(*tasks)
        finally:
            backend.detach()

    asyncio.run(scenario())


def same_first_few(backend: Backend) -> None:
    """Every fast path answer equals the full snapshot's, by order, limit and totals."""
    for sort in (None, "id", "age"):
        for limit in (0, 1, 7, 60):
            query = _query.TaskQuery(sort=sort, limit=limit)
            fast = _query.select_tasks(backend, query)
            full = _query.TaskSelection(backend.snapshot_columns(), query)
            assert [(t.id, t.parent_id) for t in fast] == [(t.id, t.parent_id) for t in full], (sort, limit)
            assert (fast.total, fast.matched, fast.shown) == (full.total, full.matched, full.shown)


@pytest.mark.parametrize("trace", [False, True])
def test_the_first_few_on_trio_are_those_of_the_tree_and_of_age(trace: bool) -> None:
    import trio
    import trio.testing

    from aiomonitor.backends import trio_backend

    async def scenario() -> None:
        backend = trio_backend(trace=trace)
        backend.attach()
        try:
            async with trio.open_nursery() as outer:
                for i in range(20):
                    outer.start_soon(trio.sleep_forever, name=f"t{i}")

                async def nested() -> None:
                    async with trio.open_nursery() as inner:
                        for i in range(25):
                            inner.start_soon(trio.sleep_forever, name=f"inner{i}")

                outer.start_soon(nested, name="nested")
                outer.start_soon(trio.sleep_forever, name=MONITOR_TASK_NAME)  # left out, as the monitor's own
                await trio.testing.wait_all_tasks_blocked()
                assert backend.snapshot_first(None, 3, MONITOR_TASK_NAME) is not None, "the fast path is taken"
                assert backend.snapshot_first("age", 3, MONITOR_TASK_NAME) is not None
                same_first_few(backend)
                outer.cancel_scope.cancel()
        finally:
            backend.detach()

    trio.run(scenario)


class _FakeNursery:
    def __init__(self, tasks: list[Any]) -> None:
        self._tasks = tasks

    @property
    def child_tasks(self) -> list[Any]:
        return list(self._tasks)


class _TrioLikeNursery(_FakeNursery):
    """As trio keeps them: the tasks in a private set, which the walk copies
    itself (trio's public copy is a frozenset built and freed per look)."""

    @property
    def _children(self) -> set[Any]:
        return set(self._tasks)

    @property
    def child_tasks(self) -> list[Any]:
        raise AssertionError("the walk should copy the private set")


class _FakeTask:
    """What the trio walk reads of a task: its nurseries, and their tasks."""

    def __init__(self) -> None:
        self._child_nurseries: list[_FakeNursery] = []

    @property
    def child_nurseries(self) -> list[_FakeNursery]:
        return list(self._child_nurseries)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=120), st.integers(0, 130))
def test_the_first_in_tree_order_are_the_full_ordered_walk_s_first(shape: list[tuple[int, int]], limit: int) -> None:
    """Each new task goes under an earlier one (by index), in one of its nurseries."""
    from aiomonitor.backends import _trio_walk

    root = _FakeTask()
    tasks = [root]
    for parent_index, nursery_index in shape:
        parent = tasks[parent_index % len(tasks)]
        while len(parent._child_nurseries) <= nursery_index % 2:  # a renamed private set, then trio's own
            parent._child_nurseries.append(_TrioLikeNursery([]) if parent._child_nurseries else _FakeNursery([]))
        child = _FakeTask()
        parent._child_nurseries[nursery_index % 2]._tasks.append(child)
        tasks.append(child)
    from aiomonitor._gil import _passes as _gil

    # Small chunks: the chunked sorts and selections run with a few tasks.
    _trio_walk._ONE_SORT_MAX, saved = 3, _trio_walk._ONE_SORT_MAX
    _gil.SORT_CHUNK, saved_chunk = 4, _gil.SORT_CHUNK
    try:
        full = _trio_walk.walk_tree(root, ordered=True)  # type: ignore[arg-type]
        first = _trio_walk.first_in_tree_order(root, limit)  # type: ignore[arg-type]
    finally:
        _trio_walk._ONE_SORT_MAX, _gil.SORT_CHUNK = saved, saved_chunk
    assert first[0] == full[0][:limit] and first[1] == full[1][:limit]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers()), max_size=300), st.integers(0, 50))
def test_the_smallest_few_gently_are_those_of_a_stable_sort(items: list[tuple[int, int]], count: int) -> None:
    from aiomonitor._gil import _passes as _gil

    _gil.SORT_CHUNK, saved = 7, _gil.SORT_CHUNK  # small chunks, so the selection and its trims run
    try:
        result = _gil.smallest_gently(items, count, key=lambda item: item[0])
        plain = _gil.smallest_gently(items, count)
    finally:
        _gil.SORT_CHUNK = saved
    assert result == sorted(items, key=lambda item: item[0])[:count]
    assert plain == sorted(items)[:count]


@given(st.lists(st.integers(), max_size=60), st.integers(1, 7))
def test_releasing_gently_empties_every_kind_of_container(items: list[int], piece: int) -> None:
    from aiomonitor._gil import _passes as _gil

    containers: list[Any] = [list(items), dict.fromkeys(items, "x"), set(items)]
    saved, _gil.RELEASE_PIECE = _gil.RELEASE_PIECE, piece
    try:
        _gil.release_gently(*containers)
    finally:
        _gil.RELEASE_PIECE = saved
    assert all(len(container) == 0 for container in containers)


@given(st.lists(st.integers(0, 6), max_size=200), st.integers(1, 9))
def test_sorting_in_runs_merges_in_pieces_stably(keys: list[int], chunk: int) -> None:
    """Few distinct keys and tiny runs: every branch of the piecewise merge, and ties."""
    import operator

    from aiomonitor._gil import _passes as _gil

    items = [(key, index) for index, key in enumerate(keys)]
    saved, _gil.SORT_CHUNK = _gil.SORT_CHUNK, chunk
    try:
        result = _gil.sorted_in_runs(items, operator.itemgetter(0))
    finally:
        _gil.SORT_CHUNK = saved
    assert result == sorted(items, key=operator.itemgetter(0))


@given(st.lists(st.text(max_size=3), max_size=40), st.sampled_from(["", "\n", ", "]), st.integers(1, 5))
def test_joining_gently_is_joining(strings: list[str], separator: str, per_pass: int) -> None:
    """Passes of a few strings, empty ones included: the same text as one join."""
    from aiomonitor._gil import _passes as _gil

    saved, _gil.JOIN_PASS = _gil.JOIN_PASS, per_pass
    try:
        joined = _gil.joined_gently(separator, iter(strings))
    finally:
        _gil.JOIN_PASS = saved
    assert joined == separator.join(strings)


def test_gil_turns_are_offered_at_most_once_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """time.sleep(0) costs ~60 µs from Python 3.11: offers within a turn's
    time are free, and a turn given starts the count again."""
    import types

    from aiomonitor._gil import _passes as _gil

    now = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(_gil, "time", types.SimpleNamespace(perf_counter=lambda: now[0], sleep=slept.append))
    turns = _gil.GilTurns()
    turns.offer()
    now[0] += _gil.HAND_OVER_EVERY / 2
    turns.offer()
    assert slept == []
    now[0] += _gil.HAND_OVER_EVERY / 2
    turns.offer()
    assert slept == [0]
    turns.offer()
    now[0] += _gil.HAND_OVER_EVERY * 0.9
    turns.offer()
    assert slept == [0]


def test_pings_while_one_is_unanswered_share_it() -> None:
    """Fifty probes at once cost the app's loop one callback, not fifty."""
    from aiomonitor._query._watchdog import LoopWatchdog

    posted: list[Callable[[], None]] = []

    class Posting(FakeBackend):
        def call_soon(self, callback: Callable[[], None]) -> None:
            posted.append(callback)

    watchdog = LoopWatchdog(Posting([]))
    first, second = watchdog.ping(), watchdog.ping()
    assert first is second and len(posted) == 1
    assert watchdog.blocked_for() >= 0.0 and not first.is_set()
    posted.pop()()  # the loop answers
    assert first.is_set() and watchdog.blocked_for() == 0.0
    third = watchdog.ping()
    assert third is not first and len(posted) == 1
