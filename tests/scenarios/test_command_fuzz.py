"""Random arguments to every read-only built-in command, over a real socket:
no traceback ever, and the session goes on.  (``cancel`` and ``signal`` act on
what they are given, and ``console``/``top``/``exit`` change the session: their
argument checks have tests of their own.)"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiomonitor

from ..support.helpers import Client, classic_loop_thread

COMMANDS = (
    "ps",
    "where",
    "where-ended",
    "ended",
    "pstree",
    "help",
    "who",
    "lag",
    "stacktrace",
    "top",
    "doctor",
    "control",
    "audit",
)
WORDS = st.one_of(
    st.sampled_from(
        [
            "-j",
            "-a",
            "-w",
            "-g",
            "-e",
            "--expand",
            "-s",
            "-n",
            "--sort",
            "--limit",
            "age",
            "name",
            "busy",
            "0",
            "-1",
            "nan",
        ]
    ),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30),
)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    def make(loop: asyncio.AbstractEventLoop) -> aiomonitor.Monitor:
        return aiomonitor.Monitor(loop, port=0, console_port=0, trace_tasks=True, max_termination_history=10)

    with classic_loop_thread(make) as (monitor, _), Client(monitor.port) as connected:
        connected.start()
        yield connected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(COMMANDS), st.lists(WORDS, max_size=4))
def test_any_arguments_get_an_answer_and_the_session_goes_on(client: Client, command: str, words: list[str]) -> None:
    if command == "top":  # a valid top refreshes until Enter: keep it to its checks
        words = [*words[:1], "-1"]
    line = " ".join([command, *map(shlex.quote, words)])
    answer = client.command(line)
    assert "Traceback" not in answer and "failed:" not in answer, (line, answer)
    assert client.command("lag").startswith("The event loop is responsive")


@pytest.fixture(scope="module")
def reader() -> Iterator[Client]:
    """A read-only session of a monitor with a control password."""

    def make(loop: asyncio.AbstractEventLoop) -> aiomonitor.Monitor:
        return aiomonitor.Monitor(loop, port=0, console_port=0, password="reader", control_password="admin")

    with classic_loop_thread(make) as (monitor, _), Client(monitor.port) as connected:
        connected.read_until(b"Password: ")
        connected.send(b"reader\r\n")
        connected.start()
        yield connected


# Each wrong control password is answered after the login throttle's delay: few examples.
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=40).filter(lambda t: t.strip() != "admin"))
def test_any_control_password_gets_an_answer_and_the_session_stays_read_only(reader: Client, offered: str) -> None:
    reader.send(b"control\r\n")
    reader.read_until(b"Control password: ")
    assert reader.command(offered) == "Wrong control password.\n"
    assert reader.command("cancel 1") == "cancel needs control: type control, then the control password\n"
