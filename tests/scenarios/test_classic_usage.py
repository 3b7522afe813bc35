"""The classic 0.4 pattern, as 0.4.5's own suite drove it: a loop running in
a thread with ``run_forever`` inside ``with monitor:``, a subclass with a
command, ``locals`` for the console, and the behaviours that suite checked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import aiomonitor
from aiomonitor.utils import all_tasks

from ..support.helpers import CONSOLE_PROMPT, Client, classic_loop_thread, poll


class MonitorSubclass(aiomonitor.Monitor):
    def do_something(self, arg: str) -> None:
        self._sout.write("doing something with " + arg)
        self._sout.flush()


@pytest.fixture
def classic() -> Iterator[tuple[MonitorSubclass, asyncio.AbstractEventLoop]]:
    def make(loop: asyncio.AbstractEventLoop) -> MonitorSubclass:
        return MonitorSubclass(loop, port=0, console_port=0, locals={"foo": "bar", "make_baz": lambda: "baz"})

    with classic_loop_thread(make) as (monitor, loop):
        yield monitor, loop
    assert monitor.closed


def test_the_commands_0_4_checked(classic: tuple[MonitorSubclass, asyncio.AbstractEventLoop]) -> None:
    monitor, _ = classic
    with Client(monitor.port) as client:
        client.start()
        assert "Available Commands" in client.command("help")
        assert client.command("xxx") == "No such command: xxx\n"
        assert client.command("signal name") == "Unknown signal name\n"
        assert "loop.run_forever()" in client.command("stacktrace")
        assert client.command("w 123") == "No task 123\n"
        assert client.command("c 123").startswith('Ambiguous command "c"')
        assert client.command("ca 123") == "No task 123\n"
        assert client.command("something someargument") == "doing something with someargument"


def test_where_and_cancel_every_task_of_a_threaded_loop(
    classic: tuple[MonitorSubclass, asyncio.AbstractEventLoop],
) -> None:
    monitor, loop = classic

    async def sleeper() -> None:
        await asyncio.sleep(100)

    future = asyncio.run_coroutine_threadsafe(sleeper(), loop)
    with Client(monitor.port) as client:
        client.start()
        # The loop creates the task when it gets to it: wait for that, with a deadline.
        assert poll(lambda: len(all_tasks(loop)) > 0)
        task_ids = [id(task) for task in all_tasks(loop)]  # 0.4's helper, from another thread
        for task_id in task_ids:
            assert client.command(f"where {task_id}").startswith(f"Stack for task {task_id}")
            assert client.command(f"cancel {task_id}") == f"Cancelled task {task_id}.\n"
    assert future.cancelled() or isinstance(future.exception(5), asyncio.CancelledError)


def test_the_console_sees_locals_and_returns_to_the_monitor(
    classic: tuple[MonitorSubclass, asyncio.AbstractEventLoop],
) -> None:
    monitor, _ = classic
    with Client(monitor.port) as client:
        client.start()
        assert "asyncio event loop" in client.command("console", CONSOLE_PROMPT)
        assert client.command("await asyncio.sleep(0)", CONSOLE_PROMPT) == ""
        assert client.command("foo", CONSOLE_PROMPT) == "'bar'\n"
        assert client.command("make_baz()", CONSOLE_PROMPT) == "'baz'\n"
        assert client.command("exit()") == "Back in the monitor.\n"
        assert "Available Commands" in client.command("help")
