"""Code written against the classic API runs unchanged, on every loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

import aiomonitor
from aiomonitor.utils import alt_names

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread

pytestmark = pytest.mark.anyio


class CustomMonitor(aiomonitor.Monitor):
    """A subclass as the classic tutorial writes them."""

    prompt = "custom >>> "
    intro = "Welcome: {tasknum} task{s}\n"
    calls: list[tuple[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = []

    @alt_names("hi greet")
    def do_hello(self, name: str = "world") -> None:
        """Say hello

        A second paragraph of help.
        """
        self._sout.write(f"Hello, {name}!\n")

    def do_add(self, a: int, b: int) -> int:
        """Add two integers"""
        self._sout.write(f"{a + b}\n")
        return a + b

    def do_sum(self, *numbers: float) -> None:
        """Sum any number of floats"""
        self._sout.write(f"{sum(numbers)}\n")

    def do_flag(self, enabled: bool) -> None:
        """Echo a boolean"""
        self._sout.write(f"{enabled!r}\n")

    def do_ask(self) -> None:
        """Ask a question and read the answer from the same client"""
        self._sout.write("Your name? ")
        answer = self._sin.readline().strip()
        self._sout.write(f"Nice to meet you, {answer}.\n")

    def do_boom(self) -> None:
        """A buggy command"""
        raise ValueError("kaboom")

    async def do_tick(self) -> None:
        """An async command: runs inside the monitored loop"""
        await anyio.sleep(0)
        self._sout.write("tick in the loop\n")

    def precmd(self, comm: str, args: Sequence[str]) -> tuple[Any, Sequence[Any]]:
        self.calls.append(("precmd", comm))
        return super().precmd(comm, args)

    def postcmd(self, comm: str, args: Sequence[Any], result: Any, exception: Exception | None) -> None:
        self.calls.append(("postcmd", (comm, list(args), result, type(exception).__name__ if exception else None)))

    def emptyline(self) -> None:
        self.calls.append(("emptyline", self.lastcmd))
        super().emptyline()

    def default(self, comm: str, args: Sequence[str]) -> None:
        self.calls.append(("default", (comm, list(args))))
        self._sout.write(f"What is {comm}?\n")


PROMPT = b"custom >>> "


@pytest.fixture
async def custom(anyio_backend_name: str) -> Any:
    with open_monitor(anyio_backend_name, monitor=CustomMonitor) as monitor:
        yield monitor


async def run_lines(monitor: aiomonitor.Monitor, *lines: str) -> list[str]:
    with Client(monitor.port) as client:
        await in_thread(client.start, PROMPT)
        return [await in_thread(client.command, line, PROMPT) for line in lines]


async def test_custom_prompt_intro_and_typed_arguments(custom: CustomMonitor) -> None:
    with Client(custom.port) as client:
        intro = await in_thread(client.start, PROMPT)
        hello = await in_thread(client.command, "hello", PROMPT)
        named = await in_thread(client.command, 'hello "Ada Lovelace"', PROMPT)
        added = await in_thread(client.command, "add 2 40", PROMPT)
        hexed = await in_thread(client.command, "add 0x10 1", PROMPT)
        summed = await in_thread(client.command, "sum 1.5 2.5 3", PROMPT)
        flag = await in_thread(client.command, "flag yes", PROMPT)
    assert intro.startswith("Welcome: ") and "task" in intro
    assert hello == "Hello, world!\n"
    assert named == "Hello, Ada Lovelace!\n"
    assert added == "42\n"
    assert hexed == "17\n"
    assert summed == "7.0\n"
    assert flag == "True\n"


async def test_aliases_and_prefixes_of_custom_commands(custom: CustomMonitor) -> None:
    outputs = await run_lines(custom, "hi Bob", "greet", "hell", "help hello", "hel")
    assert outputs[:3] == ["Hello, Bob!\n", "Hello, world!\n", "Hello, world!\n"]
    assert outputs[4] == 'Ambiguous command "hel": could be hello, help\n'
    assert outputs[3].startswith("hello [name]\n    Say hello\n")
    assert "A second paragraph of help." in outputs[3]
    assert "aliases: hi, greet" in outputs[3]


async def test_help_lists_custom_commands_with_the_short_template(custom: CustomMonitor) -> None:
    (listing,) = await run_lines(custom, "help")
    assert "    add a b: Add two integers\n" in listing
    assert "    hello [name]: Say hello\n" in listing
    assert "    ps [args...]: Show task table\n" in listing


async def test_bad_arguments_are_one_line_errors_and_the_session_goes_on(custom: CustomMonitor) -> None:
    outputs = await run_lines(custom, "add 1 x", "add 1", "add 1 2 3", "flag maybe", "add 1 1")
    assert outputs[0] == "Argument 'b' must be int, got 'x'\n"
    assert outputs[1] == "Missing argument 'b'. Usage: add a b\n"
    assert outputs[2] == "Too many arguments. Usage: add a b\n"
    assert outputs[3] == "Argument 'enabled' must be bool, got 'maybe' (expected yes/no)\n"
    assert outputs[4] == "2\n"


async def test_hooks_are_called_as_documented(custom: CustomMonitor) -> None:
    outputs = await run_lines(custom, "add 1 2", "", "nosuch thing", "boom")
    assert outputs[0] == outputs[1] == "3\n"  # the empty line repeated "add 1 2"
    assert outputs[2] == "What is nosuch?\n"
    assert ("emptyline", "add 1 2") in custom.calls
    assert ("default", ("nosuch", ["thing"])) in custom.calls
    postcmds = [args for name, args in custom.calls if name == "postcmd"]
    assert postcmds[0] == ("add", [1, 2], 3, None)
    assert postcmds[2] == ("nosuch", ["thing"], CustomMonitor._empty_result, "UnknownCommandException")
    assert postcmds[3] == ("boom", [], CustomMonitor._empty_result, "ValueError")
    assert [name for name, _ in custom.calls].count("precmd") == 4


async def test_a_buggy_command_reports_a_short_traceback_and_the_session_goes_on(
    custom: CustomMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    outputs = await run_lines(custom, "boom", "hello")
    assert outputs[0].startswith("Command 'boom' failed: ValueError('kaboom')\nTraceback")
    assert 'raise ValueError("kaboom")' in outputs[0]
    assert outputs[1] == "Hello, world!\n"
    assert any("Command 'boom' failed" in r.getMessage() for r in caplog.records)


async def test_a_command_can_read_input_from_its_own_client(custom: CustomMonitor) -> None:
    with Client(custom.port) as client:
        await in_thread(client.start, PROMPT)
        client.send(b"ask\r\n")
        assert await in_thread(client.read_until, b"Your name? ")
        answer = await in_thread(client.command, "Grace", PROMPT)
    assert answer == "Nice to meet you, Grace.\n"


async def test_an_async_command_runs_in_the_monitored_loop(custom: CustomMonitor) -> None:
    (output,) = await run_lines(custom, "tick")
    assert output == "tick in the loop\n"


class PrefixedMonitor(aiomonitor.Monitor):
    """0.4 let a subclass name its commands with another prefix."""

    _cmd_prefix = "cmd_"

    def cmd_greet(self, name: str) -> None:
        """Say hello"""
        self._sout.write(f"Greetings, {name}.\n")


async def test_a_subclass_prefix_names_the_commands(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=PrefixedMonitor) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "greet Ada") == "Greetings, Ada.\n"
        assert await in_thread(client.command, "gr Bob") == "Greetings, Bob.\n"  # prefixes resolve too
        # As in 0.4: only methods with the subclass's prefix are commands.
        assert await in_thread(client.command, "ps") == "No such command: ps\n"


class CodeStyleMonitor(aiomonitor.Monitor):
    """Written against 0.4.5's code, which spells them getcmd and map_args."""

    seen: list[str]

    def getcmd(self, comm: str) -> Any:
        self.seen.append(f"getcmd {comm}")
        return super().getcmd(comm)

    def map_args(self, cmd: Any, args: Sequence[str]) -> Any:
        self.seen.append(f"map_args {list(args)}")
        return super().map_args(cmd, args)

    def precmd(self, comm: str, args: Sequence[str]) -> tuple[Any, Sequence[Any]]:
        cmd = self.getcmd(comm)
        return cmd, list(self.map_args(cmd, args))


class DocStyleMonitor(aiomonitor.Monitor):
    """Written against the documentation: _getcmd and _map_args."""

    seen: list[str]

    def _getcmd(self, comm: str) -> Any:
        self.seen.append(f"_getcmd {comm}")
        return super()._getcmd(comm)

    def _map_args(self, cmd: Any, args: Sequence[str]) -> Any:
        self.seen.append(f"_map_args {list(args)}")
        return super()._map_args(cmd, args)


@pytest.mark.parametrize("style", [CodeStyleMonitor, DocStyleMonitor])
async def test_both_spellings_of_the_resolver_and_mapper_are_one_method(
    anyio_backend_name: str, style: type[CodeStyleMonitor] | type[DocStyleMonitor]
) -> None:
    style.seen = []
    with open_monitor(anyio_backend_name, monitor=style) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        assert "(0 shown)" in (await in_thread(client.command, "ps -n 0")).splitlines()[0]
    prefix = "" if style is CodeStyleMonitor else "_"
    assert style.seen == [f"{prefix}getcmd ps", f"{prefix}map_args ['-n', '0']"]
    # Each spelling reaches the override, whichever the subclass wrote.
    instance = style.__new__(style)
    assert type(instance).getcmd is type(instance)._getcmd
    assert type(instance).map_args is type(instance)._map_args
