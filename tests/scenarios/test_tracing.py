"""Task tracing: creation chains, history, cancellers, the await graph, top."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import aiomonitor
from aiomonitor.backends import MONITOR_TASK_NAME

from ..conftest import open_monitor
from ..support.helpers import PROMPT, Client, in_thread

pytestmark = pytest.mark.anyio


@pytest.fixture
async def traced(anyio_backend_name: str) -> AsyncIterator[aiomonitor.Monitor]:
    with open_monitor(anyio_backend_name, trace_tasks=True, max_termination_history=5) as monitor:
        yield monitor


async def test_a_chain_of_three_creations(traced: aiomonitor.Monitor, anyio_backend_name: str) -> None:
    ready = anyio.Event()
    names: dict[str, int] = {}

    async def grandchild() -> None:
        ready.set()
        await anyio.sleep(3600)

    async def child(tg: anyio.abc.TaskGroup) -> None:
        tg.start_soon(grandchild, name="grandchild")  # created-here: grandchild
        await anyio.sleep(3600)

    async def parent(tg: anyio.abc.TaskGroup) -> None:
        tg.start_soon(child, tg, name="child")  # created-here: child
        await anyio.sleep(3600)

    async with anyio.create_task_group() as tg:
        tg.start_soon(parent, tg, name="parent")  # created-here: parent
        await ready.wait()
        with Client(traced.port) as client:
            await in_thread(client.start)
            for line in (await in_thread(client.command, "ps -j")).splitlines():
                task = json.loads(line)
                names[task["name"]] = task["id"]
            where = await in_thread(client.command, f"where {names['grandchild']}")
            table = await in_thread(client.command, "ps -w grandchild")
        tg.cancel_scope.cancel()
    chain = where.split("Creation chain (oldest first):\n")[1].splitlines()
    assert [int(line.split()[1]) for line in chain[-3:]] == [names["parent"], names["child"], names["grandchild"]]
    assert [line.split()[2] for line in chain[-3:]] == ["(parent)", "(child)", "(grandchild)"]  # creators by name
    assert all("test_tracing.py" in line for line in chain[-3:])
    assert "Age" in table and "Created at" in table
    assert re.search(r"test_tracing.py:\d+ in child", table)


async def test_history_is_bounded_and_says_how_tasks_ended(traced: aiomonitor.Monitor) -> None:
    async def returns(value: object) -> object:
        return value

    async def raises() -> None:
        raise ValueError("boom")

    async with anyio.create_task_group() as tg:
        for number in range(12):
            tg.start_soon(returns, number, name=f"returner-{number}")
    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="boom")):
        async with anyio.create_task_group() as tg:
            tg.start_soon(raises, name="raiser")
    with Client(traced.port) as client:
        await in_thread(client.start)
        ended = await in_thread(client.command, "ended -w")
        records = [json.loads(line) for line in (await in_thread(client.command, "ended -j")).splitlines()]
    assert len(records) <= 5  # the bound
    assert ended.startswith(f"{len(records)} ended task")
    raiser = next(r for r in records if r["name"] == "raiser")
    assert raiser["outcome"] == "raised ValueError('boom')"
    assert raiser["created"][0].endswith("test_tracing.py")
    assert any(r["outcome"].startswith("returned ") for r in records)


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_asyncio_history_keeps_small_results_and_survives_odd_tasks() -> None:
    """The history reads the C Task's state directly as the task is freed:
    small immutable results are kept, big ones only by type, a task
    cancelled before its first step is recorded, and a failed create_task
    (freed half-built) leaves no noise."""

    async def returns(value: object) -> object:
        return value

    async def never_started() -> None:
        pass

    with open_monitor("asyncio", trace_tasks=True, max_termination_history=10) as monitor:
        loop = asyncio.get_running_loop()
        await loop.create_task(returns(42), name="small")
        await loop.create_task(returns(list(range(1000))), name="big")
        with pytest.raises(TypeError):
            loop.create_task(42, name="not-a-coroutine")  # type: ignore[arg-type]  # noqa: RUF006
        coro = never_started()
        pending = loop.create_task(coro, name="abandoned")
        pending.cancel()
        await asyncio.sleep(0)  # the cancelled task finishes without running its coroutine
        del pending
        with Client(monitor.port) as client:
            await in_thread(client.start)
            lines = (await in_thread(client.command, "ended -j")).splitlines()
    records = {record["name"]: record for record in map(json.loads, lines)}
    assert records["small"]["outcome"] == "returned 42"
    assert records["big"]["outcome"] == "returned a list"
    assert records["abandoned"]["outcome"] == "cancelled"
    assert "not-a-coroutine" not in records


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
@pytest.mark.parametrize("own_factory", ["plain", "eager"])
async def test_tasks_made_by_the_apps_own_factory_are_traced(own_factory: str) -> None:
    """The monitor chains to the app's factory; those tasks have no slots, so
    they are traced through the side table and a done callback."""
    if own_factory == "eager" and sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in 3.12")
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[object]] = []

    def plain(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[object]:
        made.append(asyncio.Task(coro, loop=loop, **kwargs))
        return made[-1]

    async def returns() -> int:
        return 7

    async def child(ready: asyncio.Event) -> None:
        ready.set()
        await asyncio.sleep(3600)

    async def parent(ready: asyncio.Event, children: list[asyncio.Task[None]]) -> None:
        children.append(loop.create_task(child(ready), name="own-child"))
        await asyncio.sleep(3600)

    factory: Any = plain if own_factory == "plain" else asyncio.eager_task_factory  # type: ignore[attr-defined]
    loop.set_task_factory(factory)
    try:
        with open_monitor("asyncio", trace_tasks=True, max_termination_history=10) as monitor:
            ready, children = asyncio.Event(), list[asyncio.Task[None]]()
            parent_task = loop.create_task(parent(ready, children), name="own-parent")
            assert await loop.create_task(returns(), name="own-returner") == 7
            await ready.wait()
            with Client(monitor.port) as client:
                await in_thread(client.start)
                tasks = {t["name"]: t for t in map(json.loads, (await in_thread(client.command, "ps -j")).splitlines())}
                ended = [json.loads(line) for line in (await in_thread(client.command, "ended -j")).splitlines()]
            parent_task.cancel()
            children[0].cancel()
            await asyncio.gather(parent_task, *children, return_exceptions=True)
    finally:
        loop.set_task_factory(None)
    assert made or own_factory == "eager"
    assert tasks["own-child"]["creator_id"] == tasks["own-parent"]["id"]
    assert tasks["own-child"]["created"][0].endswith("test_tracing.py")
    returner = next(e for e in ended if e["name"] == "own-returner")
    assert returner["outcome"] == "returned 7"


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_a_cancellation_names_its_canceller() -> None:
    with open_monitor("asyncio", trace_tasks=True, max_termination_history=10) as monitor:
        targets = [asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="victim")]

        async def canceller() -> None:
            targets[0].cancel()  # the-cancelling-line

        killer = asyncio.get_running_loop().create_task(canceller(), name="killer")
        await asyncio.gather(*targets, killer, return_exceptions=True)
        targets.clear()  # the history records a task when it is released
        with Client(monitor.port) as client:
            await in_thread(client.start)
            ended = await in_thread(client.command, "ended -w victim")
            entry = int(re.search(r"^(\d+)\s+\d+\s+victim", ended, re.M).group(1))  # type: ignore[union-attr]
            story = await in_thread(client.command, f"where-ended {entry}")
    assert "cancelled" in ended
    assert re.search(r"Cancelled by task \d+ \(killer\)", story)
    assert "targets[0].cancel()  # the-cancelling-line" in story
    assert "base_events.py" not in story  # the loop's machinery above the task is left out
    assert "Creation chain" in story


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in 3.11")
async def test_pstree_shows_gather_and_taskgroup() -> None:
    with open_monitor("asyncio") as monitor:
        started = asyncio.Event()

        async def leaf() -> None:
            started.set()
            await asyncio.sleep(3600)

        async def gatherer() -> None:
            await asyncio.gather(
                asyncio.create_task(leaf(), name="gathered-1"), asyncio.create_task(leaf(), name="gathered-2")
            )

        async def grouper() -> None:
            async with asyncio.TaskGroup() as group:  # type: ignore[attr-defined]
                group.create_task(leaf(), name="member-1")
                group.create_task(leaf(), name="member-2")

        tasks = [asyncio.create_task(gatherer(), name="gatherer"), asyncio.create_task(grouper(), name="grouper")]
        await started.wait()
        await asyncio.sleep(0)
        with Client(monitor.port) as client:
            await in_thread(client.start)
            tree = await in_thread(client.command, "pstree")
            graph = json.loads(await in_thread(client.command, "pstree -j"))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lines = tree.splitlines()
    gatherer_line = next(i for i, line in enumerate(lines) if line.startswith("gatherer"))
    assert "[gather]" in lines[gatherer_line + 1] and "[gather]" in lines[gatherer_line + 2]
    assert sum("[taskgroup]" in line and "member-" in line for line in lines) == 2
    assert {e["how"] for e in graph["edges"]} >= {"gather", "taskgroup"}
    assert graph["cycles"] == []


async def test_pstree_on_trio_follows_nurseries(monitor: aiomonitor.Monitor, anyio_backend_name: str) -> None:
    if anyio_backend_name != "trio":
        pytest.skip("trio's nursery tree")
    import trio

    async def sleeper() -> None:
        await trio.sleep(3600)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper, name="nursery-child")
        await trio.sleep(0)
        with Client(monitor.port) as client:
            await in_thread(client.start)
            tree = await in_thread(client.command, "pstree")
        nursery.cancel_scope.cancel()
    assert re.search(r"└─ nursery-child \([^)]*sleeper\) \d+  \[nursery\]", tree)


async def test_without_tracing_the_history_says_how_to_turn_it_on(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert "trace_tasks=True" in await in_thread(client.command, "ended")
        assert "trace_tasks=True" in await in_thread(client.command, "where-ended 1")
        assert "Age" not in await in_thread(client.command, "ps")


async def test_the_history_is_off_by_default_even_when_tracing(anyio_backend_name: str) -> None:
    # Its cost is measurable (a __del__ per task on asyncio), so it is asked for separately.
    with open_monitor(anyio_backend_name, trace_tasks=True) as monitor:
        with Client(monitor.port) as client:
            await in_thread(client.start)
            ended = await in_thread(client.command, "ended")
            story = await in_thread(client.command, "where-ended 1")
            listing = await in_thread(client.command, "ps")
    assert "max_termination_history=" in ended and "max_termination_history=" in story
    assert "Created at" in listing  # creation tracing itself is on


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_the_history_keeps_asyncios_own_reports() -> None:
    # The history's __del__ skips asyncio's finaliser for tasks it has nothing
    # to say about; for the others the app must still hear asyncio's warning,
    # worded as without the monitor.
    loop = asyncio.get_running_loop()
    reports: list[str] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))
    with open_monitor("asyncio", trace_tasks=True, max_termination_history=10) as monitor:

        async def fails() -> None:
            raise ValueError("nobody looked")

        async def returns() -> int:
            return 3

        tasks = [asyncio.create_task(fails(), name="unretrieved"), asyncio.create_task(returns(), name="fine")]
        await asyncio.wait(tasks)
        tasks.clear()  # released without anyone reading the exception
        with Client(monitor.port) as client:
            await in_thread(client.start)
            ended = await in_thread(client.command, "ended -w")
    loop.set_exception_handler(previous_handler)
    assert reports == ["Task exception was never retrieved"]
    assert re.search(r"unretrieved .*raised ValueError\('nobody looked'\)", ended)
    assert re.search(r"fine .*returned 3", ended)


async def test_top_refreshes_until_enter(traced: aiomonitor.Monitor) -> None:
    with Client(traced.port) as client:
        await in_thread(client.start)
        client.send(b"top age 0.05\r\n")
        first = await in_thread(client.read_until, b"Enter or Ctrl-C leaves")
        second = await in_thread(client.read_until, b"Enter or Ctrl-C leaves")
        client.send(b"\r\n")
        rest = await in_thread(client.read_until, PROMPT)
        assert b"\x1b[H\x1b[2J" in first and b"\x1b[H\x1b[2J" in second  # redrawn in place
        assert b"Task ID" in rest
        assert (await in_thread(client.command, "help top")).startswith("top [sort] [interval]")


async def test_ps_sort_and_limit(traced: aiomonitor.Monitor) -> None:
    with Client(traced.port) as client:
        await in_thread(client.start)
        limited = await in_thread(client.command, "ps -s name -n 1")
        assert "(1 shown)" in limited
        assert (
            await in_thread(client.command, "ps -s size") == "Sort by one of id, name, state, age, busy, not 'size'\n"
        )
        assert (
            await in_thread(client.command, "ps -n x")
            == "-n takes a number of tasks from 0 to 1,000,000,000, not 'x'\n"
        )


async def test_step_timing_finds_the_busy_task(anyio_backend_name: str) -> None:
    import time

    # The idler steps once; on a loaded machine that one step can be stretched
    # (a full collection, another thread holding the GIL), so the burner is
    # given far more busy time than one stretched step: 50 steps of 4 ms.
    busy_steps = 50
    burned = anyio.Event()

    async def busy() -> None:
        steps = 0
        while True:
            time.sleep(0.004)  # the busy step
            steps += 1
            if steps == busy_steps:
                burned.set()
            await anyio.sleep(0)

    async def idle() -> None:
        await anyio.sleep(3600)

    with open_monitor(anyio_backend_name, trace_timing=True) as monitor:
        async with anyio.create_task_group() as tg:
            tg.start_soon(busy, name="burner")
            tg.start_soon(idle, name="idler")
            with anyio.fail_after(30):
                await burned.wait()
            with Client(monitor.port) as client:
                await in_thread(client.start)
                table = await in_thread(client.command, "ps -s busy")
                records = {
                    r["name"]: r for r in map(json.loads, (await in_thread(client.command, "ps -j")).splitlines())
                }
            tg.cancel_scope.cancel()
    assert "Steps" in table and "Max step" in table
    names = [line.split()[2] for line in table.splitlines()[3:]]
    assert names.index("burner") < names.index("idler")  # busiest first
    assert records["burner"]["steps"] >= busy_steps
    assert records["burner"]["longest_step"] >= 0.004
    assert records["burner"]["busy"] >= busy_steps * 0.004
    assert records["burner"]["busy"] > records["idler"]["busy"]


@pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")])
@pytest.mark.parametrize("history", [0, 5], ids=["creation-only", "with-history"])
async def test_trio_tracing_without_task_scopes(history: int) -> None:
    """cancellable_tasks=False: no per-task cancel scope.  Creation records
    then need no wrapper at all, and the history a lighter one, which must
    stay out of the stacks the app sees."""
    import trio

    ready = trio.Event()

    async def grandchild() -> None:
        ready.set()
        await trio.sleep(3600)  # the-grandchild-waits-here

    async def child(nursery: trio.Nursery) -> int:
        nursery.start_soon(grandchild, name="grandchild")
        return 7

    options: dict[str, Any] = {"trace_tasks": True, "cancellable_tasks": False, "max_termination_history": history}
    with open_monitor("trio", **options) as monitor:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child, nursery, name="child")
            await ready.wait()
            with Client(monitor.port) as client:
                await in_thread(client.start)
                listing = (await in_thread(client.command, "ps -j")).splitlines()
                tasks = {task["name"]: task for task in map(json.loads, listing)}
                where = await in_thread(client.command, f"where {tasks['grandchild']['id']}")
                ended = await in_thread(client.command, "ended -w")
                cancelled = await in_thread(client.command, f"cancel {tasks['grandchild']['id']}")
            nursery.cancel_scope.cancel()
        records = monitor._backend._instrument.records  # type: ignore[attr-defined]
        # The monitor's own (its heartbeat, a system task) live on until the run ends.
        records_left = sum(1 for task in records if task.name != MONITOR_TASK_NAME)
    assert tasks["grandchild"]["created"][0].endswith("test_tracing.py")
    stack, chain = where.split("Creation chain (oldest first):\n")
    assert "the-grandchild-waits-here" in stack
    assert "_noting_outcome" not in stack and "_own_scope" not in stack
    links = chain.splitlines()[-2:]
    assert links[0].endswith("in test_trio_tracing_without_task_scopes")  # where child was spawned
    assert links[1].endswith("in child") and int(links[1].split()[1]) == tasks["grandchild"]["id"]
    assert "cancelled" in cancelled.lower(), "no scope of its own: cancelled alone all the same"
    if history:
        assert re.search(r"child .*returned 7", ended)
    else:
        assert "max_termination_history=" in ended
    assert records_left == 0  # ended tasks' records are not kept


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_where_names_who_is_cancelling_a_live_task() -> None:
    # No history needed: a task still cleaning up after cancel() shows who asked.
    with open_monitor("asyncio", trace_tasks=True) as monitor:
        cleaning_up, finish = asyncio.Event(), asyncio.Event()

        async def slow_to_stop() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cleaning_up.set()
                await finish.wait()  # still alive, being cancelled
                raise

        victim = asyncio.create_task(slow_to_stop(), name="victim")
        await asyncio.sleep(0)

        async def killer() -> None:
            victim.cancel()  # the-cancelling-line

        await asyncio.create_task(killer(), name="killer")
        await cleaning_up.wait()
        with Client(monitor.port) as client:
            await in_thread(client.start)
            where = await in_thread(client.command, f"where {id(victim)}")
            where_killer_gone = await in_thread(client.command, "where 1")
        finish.set()
        await asyncio.gather(victim, return_exceptions=True)
    assert re.search(r"Cancellation requested by task \d+ \(killer\)", where)
    assert "victim.cancel()  # the-cancelling-line" in where
    assert where.index("Cancellation requested") < where.index("Creation chain")
    assert where_killer_gone == "No task 1\n"


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_each_task_gets_its_own_creation_line_when_lines_alternate() -> None:
    # The factory reuses the previous task's site when the same line creates
    # again; lines that alternate, and a library in between (anyio's
    # start_soon, looked through to the app), must still each be told apart.
    with open_monitor("asyncio", trace_tasks=True) as monitor:
        lines: dict[str, int] = {}
        tasks = []
        async with anyio.create_task_group() as tg:
            for round_ in range(3):
                tasks.append(asyncio.create_task(asyncio.sleep(3600), name=f"a-{round_}"))  # line-a
                tasks.append(asyncio.create_task(asyncio.sleep(3600), name=f"b-{round_}"))  # line-b
                tg.start_soon(anyio.sleep, 3600, name=f"c-{round_}")  # line-c
                tg.start_soon(anyio.sleep, 3600, name=f"d-{round_}")  # line-d
            await asyncio.sleep(0)
            with Client(monitor.port) as client:
                await in_thread(client.start)
                for task in map(json.loads, (await in_thread(client.command, "ps -j")).splitlines()):
                    if task["name"][:2] in ("a-", "b-", "c-", "d-"):
                        lines[task["name"]] = task["created"][1]
            tg.cancel_scope.cancel()
            for task in tasks:
                task.cancel()
    source = Path(__file__).read_text().splitlines()
    expected = {tag: next(i + 1 for i, text in enumerate(source) if text.endswith(f"# line-{tag}")) for tag in "abcd"}
    assert lines == {f"{tag}-{round_}": expected[tag] for tag in "abcd" for round_ in range(3)}


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_ended_entries_have_numbers_that_are_never_reused() -> None:
    with open_monitor("asyncio", trace_tasks=True, max_termination_history=100) as monitor:

        async def short(n: int) -> int:
            return n

        for n in range(60):  # one at a time: CPython hands the freed id() to the next task
            await asyncio.get_running_loop().create_task(short(n), name=f"short-{n}")
        with Client(monitor.port) as client:
            await in_thread(client.start)
            records = [json.loads(line) for line in (await in_thread(client.command, "ended -j short")).splitlines()]
            again = [json.loads(line) for line in (await in_thread(client.command, "ended -j short")).splitlines()]
            assert [r["id"] for r in records] == [r["id"] for r in again]  # stable between reads
            numbers = [r["id"] for r in records]
            assert len(numbers) == 60 and len(set(numbers)) == 60 and numbers == sorted(numbers)
            reused = max({r["task_id"] for r in records}, key=lambda i: sum(r["task_id"] == i for r in records))
            sharing = [r for r in records if r["task_id"] == reused]
            by_number = await in_thread(client.command, f"where-ended {sharing[0]['id']}")
            by_old_id = await in_thread(client.command, f"where-ended {reused}")
            by_name = await in_thread(client.command, "where-ended short-7")
    assert by_number.startswith(f"Task {reused} ({sharing[0]['name']}, ")
    if len(sharing) > 1:  # the usual case: the old id names several entries, all listed
        assert by_old_id.startswith(f"{len(sharing)} ended tasks match {reused}")
        assert all(f"#{r['id']} " in by_old_id for r in sharing)
    assert "(short-7, " in by_name and "returned 7" in by_name


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
async def test_pstree_finds_waits_through_wait_shield_and_done_callbacks(monitor: aiomonitor.Monitor) -> None:
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    async def fetch() -> None:
        await release.wait()

    async def waits_with_wait() -> None:
        await asyncio.wait([loop.create_task(fetch(), name="fetched-by-wait")])

    async def waits_with_shield() -> None:
        await asyncio.shield(loop.create_task(fetch(), name="shielded"))

    async def waits_with_as_completed() -> None:
        for next_done in asyncio.as_completed([loop.create_task(fetch(), name="completed-one")]):
            await next_done

    async def waits_with_a_callback() -> None:
        woken = loop.create_future()
        job = loop.create_task(fetch(), name="called-back")
        job.add_done_callback(lambda _: woken.set_result(None))
        await woken

    waiters = [
        loop.create_task(waits_with_wait(), name="waiter-wait"),
        loop.create_task(waits_with_shield(), name="waiter-shield"),
        loop.create_task(waits_with_a_callback(), name="waiter-callback"),
        loop.create_task(waits_with_as_completed(), name="waiter-as-completed"),
    ]
    expected = ("[wait]", "[shield]", "[callback]", "[as_completed]")
    with Client(monitor.port) as client:
        await in_thread(client.start)
        for _ in range(500):  # until every waiter has reached its wait (bounded)
            tree = await in_thread(client.command, "pstree")
            if all(how in tree for how in expected):
                break
    release.set()
    await asyncio.gather(*waiters)
    for waiter, child, how in [
        ("waiter-wait", "fetched-by-wait", "wait"),
        ("waiter-shield", "shielded", "shield"),
        ("waiter-callback", "called-back", "callback"),
        ("waiter-as-completed", "completed-one", "as_completed"),
    ]:
        parent_line = next(line for line in tree.splitlines() if line.startswith(waiter))
        child_line = next(line for line in tree.splitlines() if f" {child} (" in line)
        assert re.match(rf"[└├]─ {child} \([^)]*fetch\) \d+  \[{how}\]", child_line.strip()), tree
        assert tree.index(parent_line) < tree.index(child_line)
