"""doctor, where's wait diagnosis and the stall recorder, as a user meets them:
real app processes (asyncio, uvloop, trio) over real sockets, and in-process
apps for each primitive.  The checks' pure logic is in test_diagnosis_logic."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from aiomonitor._query import _diagnosis

from ..conftest import open_monitor
from ..support.apps import ROOT, running_app
from ..support.helpers import Client, in_thread, poll

FRAMEWORKS = [
    "asyncio",
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"),
    ),
    "trio",
]


def app_line(text: str) -> int:
    """The line of doctor_app.py that is exactly *text* (stripped)."""
    lines = (ROOT / "tests" / "support" / "doctor_app.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.strip() == text)


BLOCKING = app_line("time.sleep(0.4)  # the stall doctor must name")
TRANSFER_WAITS = app_line("async with accounts.audit_lock:")  # the first: inside transfer, nested
AUDIT_WAITS = next(
    number
    for number, line in enumerate((ROOT / "tests" / "support" / "doctor_app.py").read_text().splitlines(), 1)
    if line == "        async with accounts.ledger_lock:"
)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def sick_app(request: pytest.FixtureRequest) -> Iterator[Client]:
    """The deadlocked app, with a stall in its past, and a client on it."""
    with running_app("tests/support/doctor_app.py", request.param) as (_, port, _line), Client(port) as client:
        client.start()
        yield client


def test_doctor_finds_the_deadlock_with_both_tasks_and_their_lines(sick_app: Client) -> None:
    report = sick_app.command("doctor")
    assert "Deadlock: 2 tasks wait for each other" in report
    deadlock = report.split("[critical]")[1].split("Why it matters")[0]
    assert "'transfer'" in deadlock and "'audit'" in deadlock
    assert "`accounts.ledger_lock`" in deadlock and "`accounts.audit_lock`" in deadlock
    assert f"doctor_app.py:{TRANSFER_WAITS} in transfer" in deadlock
    assert f"doctor_app.py:{AUDIT_WAITS} in audit" in deadlock


def test_doctor_remembers_a_stall_from_before_anyone_connected(sick_app: Client) -> None:
    report = sick_app.command("doctor")
    stall = report.split("The event loop was blocked once")[1].split("Why it matters")[0]
    assert "in 'stall-maker'" in stall
    assert f"doctor_app.py:{BLOCKING} in blocking_call" in stall
    match = re.search(r"\n  (\d+\.\d+) s, \d+ s ago", stall)
    assert match is not None, stall
    seconds = float(match.group(1))
    assert 0.3 <= seconds <= 0.5, stall
    assert "stall-maker" in sick_app.command("lag")


def test_where_names_the_lock_and_its_holder(sick_app: Client) -> None:
    answer = sick_app.command("where transfer")
    assert "Waits at " in answer and f"doctor_app.py:{TRANSFER_WAITS} in transfer for " in answer
    assert "Lock `accounts.audit_lock` (locked, 1 waiting)" in answer
    assert "Held by 'audit'" in answer


def test_doctor_json_carries_the_same_findings(sick_app: Client) -> None:
    result = json.loads(sick_app.command("doctor -j"))
    checks = [f["check"] for f in result["findings"]]
    assert checks[0] == "deadlock" and "stall" in checks
    assert result["problems"] == len(result["findings"])
    assert len(result["findings"][0]["task_ids"]) == 2


@pytest.mark.parametrize("framework", ["asyncio", "trio"])
def test_a_healthy_busy_app_has_no_problems(framework: str) -> None:
    with running_app("tests/support/doctor_app.py", framework, "healthy") as (_, port, _line), Client(port) as client:
        client.start()
        for _ in range(5):  # over several moments of its queue and lock traffic
            assert client.command("doctor").startswith("No problems found in "), client.command("doctor")


def test_the_demo_reports_no_problems() -> None:
    argv = ("examples/demo_asyncio.py", "--trace", "-p", "0", "--console-port", "0")
    with running_app(*argv) as (_, port, _line), Client(port) as client:
        client.start()
        assert poll(lambda: "worker-0" in client.command("ps"))
        for _ in range(3):
            assert client.command("doctor").startswith("No problems found in "), client.command("doctor")


# -- each primitive, in process -------------------------------------------------------


class Box:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.sem = asyncio.BoundedSemaphore(1)
        self.event = asyncio.Event()
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.full: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        self.full.put_nowait(0)
        self.cond = asyncio.Condition()


async def _hold(box: Box, started: asyncio.Event) -> None:
    async with box.lock, box.sem:
        started.set()
        await asyncio.sleep(3600)


async def _on_lock(box: Box) -> None:
    async with box.lock:
        pass


async def _on_sem(box: Box) -> None:
    async with box.sem:
        pass


async def _on_event(box: Box) -> None:
    await box.event.wait()


async def _on_get(box: Box) -> None:
    await box.queue.get()


async def _on_put(box: Box) -> None:
    await box.full.put(1)


async def _on_cond(box: Box) -> None:
    async with box.cond:
        await box.cond.wait()


async def _on_task(other: asyncio.Task[Any]) -> None:
    await other


WAITERS = {
    "on-lock": "asyncio.Lock `box.lock` (locked, 1 waiting)",
    "on-sem": "asyncio.BoundedSemaphore `box.sem` (0 of 1 free, 1 waiting)",
    "on-event": "asyncio.Event `box.event` (not set, 1 waiting)",
    "on-get": "asyncio.Queue.get `box.queue` (0 items)",
    "on-put": "asyncio.Queue.put `box.full` (1 of 1 items)",
    "on-cond": "asyncio.Condition `box.cond` (1 waiting)",
    "on-task": "task 'holder' (",
}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_where_names_each_asyncio_primitive(anyio_backend: str) -> None:
    box = Box()
    started = asyncio.Event()
    holder = asyncio.create_task(_hold(box, started), name="holder")
    await started.wait()
    waiters = [
        asyncio.create_task(_on_lock(box), name="on-lock"),
        asyncio.create_task(_on_sem(box), name="on-sem"),
        asyncio.create_task(_on_event(box), name="on-event"),
        asyncio.create_task(_on_get(box), name="on-get"),
        asyncio.create_task(_on_put(box), name="on-put"),
        asyncio.create_task(_on_cond(box), name="on-cond"),
        asyncio.create_task(_on_task(holder), name="on-task"),
    ]
    await asyncio.sleep(0)  # one pass of the loop: each new task parks in its first step
    try:
        with open_monitor("asyncio") as monitor:

            def ask() -> dict[str, str]:
                with Client(monitor.port) as client:
                    client.start()
                    return {name: client.command(f"where {name}") for name in WAITERS}

            answers = await in_thread(ask)
    finally:
        for task in [holder, *waiters]:
            task.cancel()
        await asyncio.gather(holder, *waiters, return_exceptions=True)
    for name, expected in WAITERS.items():
        assert f" for {expected}" in answers[name], answers[name]
    assert "Held by 'holder'" in answers["on-lock"] and "async with box.lock" in answers["on-lock"]
    assert "Held by 'holder'" in answers["on-sem"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_doctor_reports_a_lost_future_and_not_a_kept_one(anyio_backend: str) -> None:
    kept: list[asyncio.Future[None]] = []

    async def lost_waiter() -> None:
        future = asyncio.get_running_loop().create_future()
        await future

    async def kept_waiter() -> None:
        future = asyncio.get_running_loop().create_future()
        kept.append(future)
        await future

    async def lost_event() -> None:
        event = asyncio.Event()
        await event.wait()

    tasks = [
        asyncio.create_task(lost_waiter(), name="lost"),
        asyncio.create_task(kept_waiter(), name="kept"),
        asyncio.create_task(lost_event(), name="lost-event"),
    ]
    await asyncio.sleep(0)  # one pass of the loop: each new task parks in its first step
    try:
        with open_monitor("asyncio") as monitor:

            def ask() -> str:
                with Client(monitor.port) as client:
                    client.start()
                    return client.command("doctor")

            report = await in_thread(ask)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert "on a future nothing else refers to" in report and "'lost'" in report
    assert "on an Event nothing else refers to" in report and "'lost-event'" in report
    assert "'kept'" not in report


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_task_that_swallows_cancellation_is_reported(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(asyncio.Task, "cancelling"):
        pytest.skip("asyncio before 3.11 does not say a task is being cancelled")
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)  # one pass: it catches the cancellation and parks again
    try:
        with open_monitor("asyncio", trace_tasks=True) as monitor:
            # Cancelled before tracing began: when is unknown, so the first
            # doctor to see it starts the clock.
            monkeypatch.setattr(_diagnosis, "SWALLOW_AFTER", 0.3)

            def ask() -> tuple[str, str]:
                with Client(monitor.port) as client:
                    client.start()
                    first = client.command("doctor")
                    reports = [first]

                    def reported() -> bool:
                        reports.append(client.command("doctor"))
                        return "after being cancelled" in reports[-1]

                    poll(reported)
                    return first, reports[-1]

            first, later = await in_thread(ask)
    finally:
        stop.set()
        task.uncancel()  # type: ignore[attr-defined,unused-ignore]  # 3.11+, as the skip above
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "still running long after being cancelled" not in first
    assert "still running long after being cancelled" in later and "'stubborn'" in later


# -- the stall recorder, in process ---------------------------------------------------------


async def test_a_stall_is_recorded_with_its_task_and_stack(anyio_backend_name: str) -> None:
    def stuck_for_a_while() -> None:
        time.sleep(0.3)

    with open_monitor(anyio_backend_name, stall_threshold=0.05) as monitor:
        recorder = monitor._context.stall_recorder
        assert recorder.stalls() == ()
        stuck_for_a_while()
        assert await in_thread(poll, lambda: len(recorder.stalls()) == 1)
        stall = recorder.stalls()[0]
        assert 0.2 <= stall.duration <= 0.5
        assert stall.stack[-1].name == "stuck_for_a_while"
        assert stall.task_name is not None
        assert stall.matching_samples >= 1


async def test_the_stall_recorder_thread_ends_with_the_monitor(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name):
        assert any(t.name == "aiomonitor-stalls" for t in threading.enumerate())
    assert not any(t.name == "aiomonitor-stalls" and t.is_alive() for t in threading.enumerate())


async def test_stall_threshold_none_turns_the_recorder_off(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, stall_threshold=None) as monitor:
        assert not any(t.name == "aiomonitor-stalls" for t in threading.enumerate())

        def ask() -> str:
            with Client(monitor.port) as client:
                client.start()
                return client.command("lag")

        assert "Stalls are not recorded" in await in_thread(ask)


def test_a_loop_that_starts_after_the_monitor_is_not_a_stall() -> None:
    import aiomonitor

    loop = asyncio.new_event_loop()
    try:
        with aiomonitor.Monitor(loop, port=0, console_port=0, stall_threshold=0.05) as monitor:
            recorder = monitor._context.stall_recorder
            time.sleep(0.3)  # the app's set-up before its loop runs (the scenario, not a wait for something)

            async def beaten_thrice() -> None:
                while recorder.beats < 3:
                    await asyncio.sleep(0.01)

            loop.run_until_complete(asyncio.wait_for(beaten_thrice(), 15))
            assert recorder.stalls() == ()
    finally:
        loop.close()


async def _trio_hold(lock: Any, sem: Any, limiter: Any, started: Any) -> None:
    import trio

    async with lock, sem, limiter:
        started.set()
        await trio.sleep(3600)


async def _trio_on(primitive: Any) -> None:
    async with primitive:
        pass


async def _trio_on_event(event: Any) -> None:
    await event.wait()


async def _trio_on_receive(receive: Any) -> None:
    await receive.receive()


TRIO_WAITERS = {
    "on-lock": "trio.Lock `primitive` (locked, 1 waiting)",
    "on-sem": "trio.Semaphore `primitive` (0 of 1 free, 1 waiting)",
    "on-limiter": "trio.CapacityLimiter `primitive` (1 of 1 borrowed, 1 waiting)",
    "on-event": "trio.Event `event` (not set)",
    "on-receive": "trio.MemoryReceiveChannel.receive `receive` (0 of 0 buffered)",
}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_where_names_each_trio_primitive(anyio_backend: str) -> None:
    import trio
    import trio.testing

    lock, sem, limiter, event = trio.Lock(), trio.Semaphore(1, max_value=1), trio.CapacityLimiter(1), trio.Event()
    _send, receive = trio.open_memory_channel[int](0)
    with open_monitor("trio") as monitor:
        async with trio.open_nursery() as nursery:
            started = trio.Event()
            nursery.start_soon(_trio_hold, lock, sem, limiter, started, name="holder")
            await started.wait()
            nursery.start_soon(_trio_on, lock, name="on-lock")
            nursery.start_soon(_trio_on, sem, name="on-sem")
            nursery.start_soon(_trio_on, limiter, name="on-limiter")
            nursery.start_soon(_trio_on_event, event, name="on-event")
            nursery.start_soon(_trio_on_receive, receive, name="on-receive")
            await trio.testing.wait_all_tasks_blocked()

            def ask() -> dict[str, str]:
                with Client(monitor.port) as client:
                    client.start()
                    return {name: client.command(f"where {name}") for name in TRIO_WAITERS}

            answers = await in_thread(ask)
            nursery.cancel_scope.cancel()
    for name, expected in TRIO_WAITERS.items():
        assert f" for {expected}" in answers[name], answers[name]
    for name in ("on-lock", "on-limiter"):  # trio records these owners
        assert "Held by 'holder' (" in answers[name] and "(its owner at " in answers[name]
    assert "Held by 'holder' (" in answers["on-sem"]  # a semaphore's holders are inferred
    assert "(probably: inside `async with sem` at " in answers["on-sem"]


@pytest.mark.parametrize("options", [{"stall_threshold": 0}, {"stall_threshold": -1.0}, {"max_stalls": 0}])
def test_absurd_recorder_options_are_refused(options: dict[str, Any]) -> None:
    import aiomonitor

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match=r"stall_threshold|max_stalls"):
            aiomonitor.Monitor(loop, port=0, console_port=0, **options)
    finally:
        loop.close()


# -- what tracing and timing add ---------------------------------------------------------


def _doctor(monitor: Any) -> str:
    with Client(monitor.port) as client:
        client.start()
        return client.command("doctor")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_exception_nobody_awaited_is_reported(anyio_backend: str) -> None:
    import gc

    async def fails() -> None:
        raise ValueError("nobody listens")

    async def fine() -> None:
        raise KeyError("handled")

    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, _context: None)  # asyncio's own report: expected here
    with open_monitor("asyncio", trace_tasks=True, max_termination_history=10) as monitor:
        awaited = asyncio.create_task(fine(), name="awaited")
        with contextlib.suppress(KeyError):
            await awaited
        del awaited
        asyncio.create_task(fails(), name="forgotten")  # noqa: RUF006 - the point: nobody keeps it
        await asyncio.sleep(0)  # one pass: it raises in its first step
        gc.collect()  # asyncio reports (and our history learns) when the task is freed
        loop.set_exception_handler(handler)
        report = await in_thread(_doctor, monitor)
    assert "1 task ended with an exception nobody awaited" in report.replace("A task", "1 task")
    assert "'forgotten'" in report and "ValueError('nobody listens') (never retrieved)" in report
    assert "'awaited'" not in report


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_tasks_piling_up_at_one_line_are_a_leak(anyio_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real thresholds (1,000 tasks, a minute) are scaled down, not waited for.
    monkeypatch.setattr(_diagnosis, "LEAK_MIN_TASKS", 50)
    monkeypatch.setattr(_diagnosis, "LEAK_WINDOW", 0.2)
    release = asyncio.Event()

    async def never_done() -> None:
        await release.wait()

    def spawn(count: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(never_done()) for _ in range(count)]  # one creation site

    with open_monitor("asyncio", trace_tasks=True) as monitor:
        old = spawn(50)
        quiet = await in_thread(_doctor, monitor)
        await asyncio.sleep(0.3)  # the scaled-down minute: these are old now
        new = spawn(10)
        await asyncio.sleep(0)
        leaking = await in_thread(_doctor, monitor)
        release.set()
        await asyncio.gather(*old, *new)
    assert "and counting" not in quiet  # all new: not (yet) a pile
    assert "60 live tasks created at " in leaking and "test_doctor.py" in leaking and "and counting" in leaking


async def test_a_slow_step_is_reported_with_timing(anyio_backend_name: str) -> None:
    import anyio

    def chew() -> None:
        time.sleep(0.15)

    chewed = anyio.Event()

    async def slow() -> None:
        chew()
        chewed.set()
        await anyio.sleep(3600)  # the step ends here, and is timed

    with open_monitor(anyio_backend_name, trace_timing=True) as monitor:
        async with anyio.create_task_group() as group:
            group.start_soon(slow, name="slowpoke")
            await chewed.wait()
            report = await in_thread(_doctor, monitor)
            group.cancel_scope.cancel()
    assert "held the loop over 100 ms in one step" in report and "'slowpoke'" in report
