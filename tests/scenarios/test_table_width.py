"""Tables a person can trust at any width (``_table``'s rule), over real sockets.

A client that says nothing of its width (nc, piped input) gets every cell
whole; one that says 80 columns gets full names and ``file.py:LINE`` within
80 columns, and a line naming the columns it hid; ``-w`` shows them; JSON is
never shortened.
"""

from __future__ import annotations

import json
import re

import pytest

import aiomonitor

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread, parked_tasks

pytestmark = pytest.mark.anyio

#: Names of up to 20 characters: a table of them fits 80 columns.
NAMES = ("qz-upstream-poller-1", "qz-fetch-upstream", "qz")
LONG = "a-task-with-a-remarkably-long-name-that-no-terminal-could-show-" * 2
IAC, SB, SE, WILL, NAWS = 255, 250, 240, 251, 31
PARKED_AT = re.compile(r"helpers\.py:\d+")


def window_size(columns: int) -> bytes:
    return bytes([IAC, WILL, NAWS, IAC, SB, NAWS, columns >> 8, columns & 255, 0, 40, IAC, SE])


def widest_line(table: str) -> int:
    return max(len(line) for line in table.splitlines())


def rows_of(table: str, names: tuple[str, ...]) -> list[str]:
    return [line for line in table.splitlines() if any(f"  {name}  " in line for name in names)]


async def test_a_client_that_says_nothing_gets_every_cell_whole(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, *NAMES, LONG):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            table = await in_thread(client.command, "ps")
            as_json = await in_thread(client.command, "ps -j")
    assert "…" not in table
    for name in (*NAMES, LONG):
        assert f"  {name}  " in table
    for row in rows_of(table, NAMES):
        assert PARKED_AT.search(row), row
    assert LONG in {json.loads(line)["name"] for line in as_json.splitlines()}


async def test_80_columns_hide_columns_not_names(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, *NAMES):
        with open_monitor(anyio_backend_name, trace_tasks=True, trace_timing=True) as monitor:
            with Client(monitor.port) as client:
                client.send(window_size(80))
                await in_thread(client.start)
                table = await in_thread(client.command, "ps qz")  # only ours: the test runner's names are long
                wide = await in_thread(client.command, "ps -w qz")
    assert widest_line(table) <= 80
    rows = rows_of(table, NAMES)
    assert len(rows) == len(NAMES)
    for row in rows:
        assert PARKED_AT.search(row), row  # file.py:LINE, always
    note = table.partition("Hidden to fit 80 columns: ")[2].replace("\n", " ").strip()
    assert note.endswith("(-w shows all)")
    for header in ("Created at", "Busy", "Max step"):
        assert header in note and header in wide.splitlines()[1]
    assert "Hidden" not in wide


async def test_a_wider_window_shows_more_columns(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, *NAMES):
        with open_monitor(anyio_backend_name, trace_tasks=True) as monitor, Client(monitor.port) as client:
            client.send(window_size(200))
            await in_thread(client.start)
            table = await in_thread(client.command, "ps")
    assert "Hidden" not in table
    assert all(header in table.splitlines()[1] for header in ("Coroutine", "Age", "Created at"))


async def test_ended_follows_the_same_rule(anyio_backend_name: str) -> None:
    names = ("short-lived-job-0001", "short-lived-job-0002")
    options = {"trace_tasks": True, "max_termination_history": 10}
    with open_monitor(anyio_backend_name, **options) as monitor:
        async with parked_tasks(anyio_backend_name, *names):
            pass  # they end (cancelled) on the way out
        with Client(monitor.port) as plain, Client(monitor.port) as narrow:
            narrow.send(window_size(80))
            await in_thread(plain.start)
            await in_thread(narrow.start)
            whole = await in_thread(plain.command, "ended")
            fitted = await in_thread(narrow.command, "ended")
            wide = await in_thread(narrow.command, "ended -w")
    for table in (whole, fitted):
        assert len(rows_of(table, names)) == 2, table
    assert widest_line(fitted) <= 80
    assert "Hidden to fit 80 columns: Created at" in fitted
    assert "Created at" in wide.splitlines()[1] and "Hidden" not in wide


async def test_the_who_table_is_not_affected(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert "(you)" in await in_thread(client.command, "who")
