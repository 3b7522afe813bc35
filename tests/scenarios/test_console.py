"""The in-loop Python console, on its own port and through ``console``."""

from __future__ import annotations

import re
import socket
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import aiomonitor

from ..conftest import open_monitor
from ..support.helpers import CONSOLE_PROMPT, PROMPT, Client, in_thread

pytestmark = pytest.mark.anyio

IAC_IP = b"\xff\xf4"


@pytest.fixture
async def app_state() -> dict[str, Any]:
    return {"count": 1}


@pytest.fixture
async def console_monitor(anyio_backend_name: str, app_state: dict[str, Any]) -> AsyncIterator[aiomonitor.Monitor]:
    with open_monitor(anyio_backend_name, locals={"state": app_state}) as monitor:
        yield monitor


async def open_console(monitor: aiomonitor.Monitor) -> Client:
    client = Client(monitor.console_port)
    banner = await in_thread(client.start, CONSOLE_PROMPT)
    assert "console is running in a" in banner
    return client


async def lines(client: Client, *sources: str) -> list[str]:
    return [await in_thread(client.command, source, CONSOLE_PROMPT) for source in sources]


async def test_expressions_echo_and_underscore(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        assert await lines(client, "1 + 1", "_ * 10", "None", "'a' * 3") == ["2\n", "20\n", "", "'aaa'\n"]


async def test_assignment_then_read(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        assert await lines(client, "x = 41", "x + 1") == ["", "42\n"]


async def test_locals_are_the_apps_own_objects(console_monitor: aiomonitor.Monitor, app_state: dict[str, Any]) -> None:
    with await open_console(console_monitor) as client:
        assert await lines(client, "state['count'] += 1", "state") == ["", "{'count': 2}\n"]
    assert app_state["count"] == 2


async def test_top_level_await_runs_in_the_loop_thread(
    console_monitor: aiomonitor.Monitor, anyio_backend_name: str
) -> None:
    framework = "trio" if anyio_backend_name == "trio" else "asyncio"
    with await open_console(console_monitor) as client:
        slept, thread_id = await lines(
            client, f"await {framework}.sleep(0.01)", "import threading; threading.get_ident()"
        )
    assert slept == ""
    assert thread_id == f"{threading.get_ident()}\n"


async def test_multi_line_async_def_then_await(console_monitor: aiomonitor.Monitor, anyio_backend_name: str) -> None:
    framework = "trio" if anyio_backend_name == "trio" else "asyncio"
    with await open_console(console_monitor) as client:
        client.send(b"async def answer():\r\n")
        await in_thread(client.read_until, b"... ")
        client.send(f"    await {framework}.sleep(0)\r\n".encode())
        await in_thread(client.read_until, b"... ")
        client.send(b"    return 42\r\n")
        await in_thread(client.read_until, b"... ")
        assert await in_thread(client.command, "", CONSOLE_PROMPT) == ""
        assert await lines(client, "await answer()", "for i in range(2):\n    i\n") == ["42\n", "... ... 0\n1\n"]


async def test_print_goes_to_the_client_not_the_apps_stdout(
    console_monitor: aiomonitor.Monitor, capsys: pytest.CaptureFixture[str]
) -> None:
    with await open_console(console_monitor) as client:
        (output,) = await lines(client, "print('from the console', 42)")
    assert output == "from the console 42\n"
    assert "from the console" not in capsys.readouterr().out


async def test_exceptions_show_a_clean_traceback_and_the_session_goes_on(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        error, after = await lines(client, "1 / 0", "2 + 2")
        syntax, after_syntax = await lines(client, "def (", "3 + 3")
    assert error.startswith("Traceback (most recent call last):\n")
    assert 'File "<console>", line 1, in <module>' in error
    assert error.endswith("ZeroDivisionError: division by zero\n")
    assert "aiomonitor" not in error
    assert after == "4\n"
    assert "SyntaxError" in syntax
    assert after_syntax == "6\n"


async def test_system_exit_cannot_stop_the_app(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        stopped, alive = await lines(client, "raise SystemExit(3)", "'still alive'")
    assert stopped.startswith("SystemExit(3,) ignored")
    assert alive == "'still alive'\n"


async def test_two_console_sessions_have_their_own_namespaces(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as first, await open_console(console_monitor) as second:
        assert await lines(first, "mine = 'first'") == [""]
        (missing,) = await lines(second, "mine")
        assert await lines(first, "mine") == ["'first'\n"]
    assert "NameError: name 'mine' is not defined" in missing


async def test_ctrl_c_cancels_a_long_await(console_monitor: aiomonitor.Monitor, anyio_backend_name: str) -> None:
    framework = "trio" if anyio_backend_name == "trio" else "asyncio"
    with await open_console(console_monitor) as client:
        client.send(f"await {framework}.sleep(3600)\r\n".encode())
        # The statement is running once the monitor lists its task.
        with Client(console_monitor.port) as watcher:
            await in_thread(watcher.start)
            for _ in range(500):
                if "aiomonitor-console" in await in_thread(watcher.command, "ps -a -w aiomonitor-console"):
                    break
        client.send(IAC_IP)
        interrupted = await in_thread(client.read_until, CONSOLE_PROMPT)
        assert b"KeyboardInterrupt" in interrupted
        assert await lines(client, "'next'") == ["'next'\n"]


async def test_console_command_round_trip(console_monitor: aiomonitor.Monitor) -> None:
    with Client(console_monitor.port) as client:
        await in_thread(client.start)
        client.send(b"console\r\n")
        await in_thread(client.read_until, CONSOLE_PROMPT)
        assert await lines(client, "kept = 6 * 7") == [""]
        client.send(b"exit()\r\n")
        back = await in_thread(client.read_until, PROMPT)
        assert b"Back in the monitor." in back
        assert (await in_thread(client.command, "help ps")).startswith("ps ")
        # Re-entering keeps this connection's namespace; Ctrl-D leaves too.
        client.send(b"console\r\n")
        await in_thread(client.read_until, CONSOLE_PROMPT)
        assert await lines(client, "kept") == ["42\n"]
        client.send(b"\x04")
        assert b"Back in the monitor." in await in_thread(client.read_until, PROMPT)


async def test_console_disabled(anyio_backend_name: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        unused_port = probe.getsockname()[1]
    with open_monitor(anyio_backend_name, console_enabled=False, console_port=unused_port) as monitor:
        with Client(monitor.port) as client:
            await in_thread(client.start)
            reply = await in_thread(client.command, "console")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused_port), timeout=5).close()
    assert reply == "Python console disabled for this session\n"


async def test_multi_line_prompt_shows_continuation(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        client.send(b"if True:\r\n")
        assert (await in_thread(client.read_until, b"... ")).endswith(b"... ")
        client.send(b"    'inside'\r\n\r\n")
        output = await in_thread(client.read_until, CONSOLE_PROMPT)
    assert re.search(rb"'inside'\r\n>>> $", output)


async def test_the_monitors_own_tasks_are_hidden_unless_asked_for(anyio_backend_name: str) -> None:
    framework = "trio" if anyio_backend_name == "trio" else "asyncio"
    options: dict[str, Any] = {"trace_tasks": True, "max_termination_history": 50}
    with open_monitor(anyio_backend_name, **options) as monitor, await open_console(monitor) as console:
        with Client(monitor.port) as watcher:
            await in_thread(watcher.start)
            before = await in_thread(watcher.command, "ps")
            console.send(f"await {framework}.sleep(3600)\r\n".encode())
            for _ in range(500):  # the statement runs once its task is listed
                if "aiomonitor-console" in await in_thread(watcher.command, "ps -a -w"):
                    break
            hidden = await in_thread(watcher.command, "ps")
            assert "aiomonitor-console" not in hidden
            assert hidden.splitlines()[0] == before.splitlines()[0]  # the count leaves it out too
            assert "aiomonitor-console" not in await in_thread(watcher.command, "pstree")
            assert "aiomonitor-console" in await in_thread(watcher.command, "pstree -a")
            console.send(IAC_IP)
            await in_thread(console.read_until, CONSOLE_PROMPT)
            assert await lines(console, "1 + 1") == ["2\n"]  # a statement that ends: history
            ended = await in_thread(watcher.command, "ended")
            assert "aiomonitor-console" not in ended
            assert "aiomonitor-console" in await in_thread(watcher.command, "ended -a -w")


async def test_the_console_offers_the_monitored_loop_as_0_4_did(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("trio has no loop object")
    with open_monitor(anyio_backend_name) as monitor, await open_console(monitor) as client:
        assert await lines(client, "loop is asyncio.get_running_loop()") == ["True\n"]


async def test_help_and_stdin_readers_talk_to_the_client_not_the_app(console_monitor: aiomonitor.Monitor) -> None:
    with await open_console(console_monitor) as client:
        rendered = "".join(await lines(client, "help(len)"))
        assert "Help on built-in function len" in rendered
        assert "Return the number of items" in rendered
        assert "\b" not in rendered  # no overstrike bold: plain text for a telnet client
        assert "help(obj)" in "".join(await lines(client, "help()"))  # no pager on the app's stdin
        assert "keyword" in "".join(await lines(client, "help('keywords')")).lower()
        for reader in ("input('name? ')", "breakpoint()"):
            refused = "".join(await lines(client, reader))
            assert "would read the app's standard input" in refused
        assert await lines(client, "1 + 1") == ["2\n"]  # the session and the app go on


#: A child that starts a monitor and prints whether pydoc has been imported.
_PYDOC_CHILD = {
    "asyncio": """
import asyncio, sys, aiomonitor
async def main():
    with aiomonitor.start_monitor(asyncio.get_running_loop(), port=0, console_port=0):
        await asyncio.sleep(0)
        print("pydoc" in sys.modules)
asyncio.run(main())
""",
    "trio": """
import sys, trio, aiomonitor
async def main():
    with aiomonitor.monitor_trio(port=0, console_port=0):
        await trio.sleep(0)
        print("pydoc" in sys.modules)
trio.run(main)
""",
}


async def test_pydoc_waits_for_the_first_help(anyio_backend_name: str) -> None:
    # Every object a started monitor imports is walked by the app's cyclic
    # collector at each full collection; pydoc is for help() alone.
    child = await anyio.run_process([sys.executable, "-c", _PYDOC_CHILD[anyio_backend_name]])
    assert child.stdout.decode().split() == ["False"]


async def test_a_big_result_arrives_whole_and_a_runaway_print_ends_with_its_prompt(
    console_monitor: aiomonitor.Monitor,
) -> None:
    """Statements write from the app's loop, which never waits for a client:
    one result of any size is kept whole; many prints arrive whole while the
    client keeps up, are cut to a marker past the limit unsent when it does
    not, and the prompt follows either way."""
    from aiomonitor._server._streams import NOT_KEEPING_UP

    with await open_console(console_monitor) as client:
        (big,) = await lines(client, "'x' * 20_000_000")
        assert big == "'" + "x" * 20_000_000 + "'\n"
        client.send(b"for i in range(200_000): print('y' * 200)\r\n\r\n")
        runaway = await in_thread(lambda: client.read_until(CONSOLE_PROMPT, 60))
        cut = runaway.endswith(f"\r\n{NOT_KEEPING_UP}\r\n".encode() + CONSOLE_PROMPT)
        assert cut or runaway.count(b"y" * 200 + b"\r\n") == 200_000
        assert (await lines(client, "6 * 7")) == ["42\n"]
