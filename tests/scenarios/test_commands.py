"""The built-in commands over a real socket, on every loop."""

from __future__ import annotations

import json
import re

import anyio
import pytest
from anyio.abc import TaskStatus

import aiomonitor

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread, parked_tasks, poll

pytestmark = pytest.mark.anyio


async def parked(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await anyio.sleep(3600)  # parked-line


def task_ids(ps_output: str, name: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(rf"^(\d+)\s+\S+\s+{re.escape(name)}\s", ps_output, re.M)]


async def test_intro_counts_tasks_and_prompts(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        intro = await in_thread(client.start)
    assert re.search(r"(Asyncio|Trio) Monitor: \d+ tasks? running", intro)
    assert "Type help for available commands" in intro


async def test_help_lists_every_command_and_details_one(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        listing = await in_thread(client.command, "help")
        detail = await in_thread(client.command, "help where")
        by_alias = await in_thread(client.command, "? cancel")
    for name in ("cancel", "console", "exit", "help", "ps", "signal", "stacktrace", "where"):
        assert re.search(rf"^    {name}\b", listing, re.M), name
    assert detail.startswith("where taskid\n    Show stack frames for a task")
    assert "aliases: w" in detail
    assert by_alias.startswith("cancel taskid")


async def test_ps_shows_named_tasks_with_coroutine_and_location(monitor: aiomonitor.Monitor) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(parked, name="parked-one")
        await tg.start(parked, name="parked-two")
        with Client(monitor.port) as client:
            await in_thread(client.start)
            table = await in_thread(client.command, "ps -w")
            filtered = await in_thread(client.command, "ps -w parked-two")
        tg.cancel_scope.cancel()
    assert re.match(r"\d+ tasks\n", table)
    assert "Task ID" in table and "Coroutine" in table and "Location" in table
    row = next(line for line in table.splitlines() if "parked-one" in line)
    assert "parked" in row and "test_commands.py:" in row
    assert "parked-two" in filtered and "parked-one" not in filtered
    assert "(1 shown)" in filtered


async def test_ps_json_lines_for_scripts(monitor: aiomonitor.Monitor) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(parked, name="json-me")
        with Client(monitor.port) as client:
            await in_thread(client.start)
            output = await in_thread(client.command, "ps -j json-me")
        tg.cancel_scope.cancel()
    records = [json.loads(line) for line in output.splitlines()]
    assert len(records) == 1
    assert records[0]["name"] == "json-me"
    assert records[0]["coro"] == "parked"
    assert records[0]["location"]["file"].endswith("test_commands.py")


async def test_where_shows_the_await_stack_with_source(monitor: aiomonitor.Monitor) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(parked, name="where-me")
        with Client(monitor.port) as client:
            await in_thread(client.start)
            (task_id,) = task_ids(await in_thread(client.command, "ps where-me"), "where-me")
            stack = await in_thread(client.command, f"where {task_id}")
            by_alias = await in_thread(client.command, f"w {task_id}")
        tg.cancel_scope.cancel()
    assert stack.startswith(f"Stack for task {task_id} (most recent call last):")
    assert re.search(r'File ".*test_commands.py", line \d+, in parked\n    await anyio.sleep\(3600\)', stack)
    assert by_alias == stack


async def test_unknown_task_ids_and_bad_arguments_are_one_line_errors(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "where 12345") == "No task 12345\n"
        assert await in_thread(client.command, "cancel 12345") == "No task 12345\n"
        assert await in_thread(client.command, "where abc") == "No task named abc\n"
        assert await in_thread(client.command, "where") == "Missing argument 'taskid'. Usage: where taskid\n"
        assert await in_thread(client.command, "where 1 2") == "Too many arguments. Usage: where taskid\n"
        assert await in_thread(client.command, "frobnicate") == "No such command: frobnicate\n"
        assert "still here" not in await in_thread(client.command, "help ps")


async def test_cancel_stops_one_task_and_reports_it(monitor: aiomonitor.Monitor, anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, "victim-a", "victim-b", "victim-c") as cancelled:
        with Client(monitor.port) as client:
            await in_thread(client.start)
            (task_id,) = task_ids(await in_thread(client.command, "ps victim-b"), "victim-b")
            outcome = await in_thread(client.command, f"cancel {task_id}")
            again = await in_thread(client.command, f"cancel {task_id}")
            remaining = await in_thread(client.command, "ps victim")
        assert cancelled == ["victim-b"]
    assert outcome == f"Cancelled task {task_id}.\n"
    assert again == f"No task {task_id}\n"
    assert "victim-a" in remaining and "victim-c" in remaining and "victim-b" not in remaining


async def test_stacktrace_shows_the_loop_thread(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        output = await in_thread(client.command, "st")
    assert output.startswith("Stack of the event loop thread (most recent call last):\n")
    assert "test_stacktrace_shows_the_loop_thread" in output or "run" in output
    assert re.search(r'File ".*", line \d+, in ', output)


async def test_unknown_signal_is_an_error(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "signal SIGNOPE") == "Unknown signal SIGNOPE\n"


async def test_exit_and_its_aliases_close_the_connection(monitor: aiomonitor.Monitor) -> None:
    for word in ("exit", "quit", "q"):
        with Client(monitor.port) as client:
            await in_thread(client.start)
            client.send(word.encode() + b"\r\n")
            rest = await in_thread(client.read_to_eof)
        assert b"Leaving monitor" in rest


async def test_prefixes_resolve_and_ambiguity_is_reported(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert (await in_thread(client.command, "stack")).startswith("Stack of the event loop thread")
        ambiguous = await in_thread(client.command, "c")
    assert ambiguous == 'Ambiguous command "c": could be cancel, console, control, cost\n'


async def test_empty_line_repeats_the_last_command(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        first = await in_thread(client.command, "help ps")
        repeated = await in_thread(client.command, "")
    assert repeated == first


async def test_a_prefix_of_where_means_where(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "wher 12345") == "No task 12345\n"


async def test_tasks_are_named_or_numbered_and_a_shared_name_is_listed(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor:  # first: trio cancels tasks spawned after it
        async with parked_tasks(anyio_backend_name, "upstream-poller", "twin", "twin") as cancelled:
            with Client(monitor.port) as client:
                await in_thread(client.start)
                by_name = await in_thread(client.command, "where upstream-poller")
                (task_id,) = task_ids(await in_thread(client.command, "ps -w upstream-poller"), "upstream-poller")
                assert by_name == await in_thread(client.command, f"where {task_id}")
                twins = sorted(task_ids(await in_thread(client.command, "ps -w twin"), "twin"))
                listing = await in_thread(client.command, "cancel twin")
                assert listing.startswith("2 tasks are named twin (") and listing.endswith("; give one id\n")
                assert sorted(map(int, re.findall(r"\d{6,}", listing))) == twins
                assert cancelled == []  # an ambiguous name does nothing
                assert await in_thread(client.command, "cancel upstream-poller") == f"Cancelled task {task_id}.\n"
                assert poll(lambda: cancelled == ["upstream-poller"])


async def test_a_limited_ps_still_counts_every_task(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor:
        async with parked_tasks(anyio_backend_name, "one", "two", "three"):
            with Client(monitor.port) as client:
                await in_thread(client.start)
                total = len((await in_thread(client.command, "ps -j")).splitlines())
                assert total >= 3
                first_line = (await in_thread(client.command, "ps -n 1")).splitlines()[0]
                assert first_line == f"{total} tasks (1 shown)"


async def test_absurd_numbers_are_one_line_answers(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        huge = "9" * 30
        assert await in_thread(client.command, f"ps -n {huge}") == (
            f"-n takes a number of tasks from 0 to 1,000,000,000, not '{huge}'\n"
        )
        for interval, shown in [("-1", "-1.0"), ("nan", "nan"), ("1e309", "inf"), ("0", "0.0")]:
            answer = await in_thread(client.command, f"top age {interval}")
            assert answer == f"The interval is 0.05 to 3600 seconds, not {shown}\n"
        assert await in_thread(client.command, f"where {huge}") == f"No task {huge}\n"
