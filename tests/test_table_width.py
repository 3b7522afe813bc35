"""Tables fit the client's terminal: 80 columns when it says nothing (plain
telnet, nc), what it says otherwise (telnet NAWS), everything with -w, and
JSON is never shortened."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aiomonitor
from aiomonitor import _table

from .conftest import open_monitor
from .helpers import Client, in_thread, parked_tasks

pytestmark = pytest.mark.anyio

LONG = "a-task-with-a-remarkably-long-name-that-no-terminal-could-show-" * 2
IAC, SB, SE, WILL, NAWS = 255, 250, 240, 251, 31


def window_size(columns: int) -> bytes:
    return bytes([IAC, WILL, NAWS, IAC, SB, NAWS, columns >> 8, columns & 255, 0, 40, IAC, SE])


def widest_line(table: str) -> int:
    return max(len(line) for line in table.splitlines())


async def test_a_client_that_says_nothing_gets_80_columns(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, LONG):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            table = await in_thread(client.command, "ps")
            wide = await in_thread(client.command, "ps -w")
            as_json = await in_thread(client.command, "ps -j")
    assert widest_line(table) <= 80
    assert LONG not in table and "…" in table
    assert LONG in wide and widest_line(wide) > 80
    assert LONG in {json.loads(line)["name"] for line in as_json.splitlines()}


async def test_ids_are_never_shortened_and_locations_keep_their_end(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, LONG):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            rows = await in_thread(client.command, f"ps {LONG[:20]}")
            records = await in_thread(client.command, f"ps -j {LONG[:20]}")
    (record,) = map(json.loads, records.splitlines())
    row = rows.splitlines()[-1]
    assert row.startswith(str(record["id"]) + " ")
    assert f":{record['location']['line']} in park" in row  # helpers.park's parked line


async def test_a_client_that_says_its_width_gets_that_width(anyio_backend_name: str) -> None:
    async with parked_tasks(anyio_backend_name, LONG):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            client.send(window_size(132))
            await in_thread(client.start)
            table = await in_thread(client.command, "ps")
    assert 80 < widest_line(table) <= 132
    assert LONG not in table


async def test_the_who_table_is_not_affected(monitor: aiomonitor.Monitor) -> None:
    with Client(monitor.port) as client:
        await in_thread(client.start)
        assert "(you)" in await in_thread(client.command, "who")


@given(st.text(max_size=200), st.integers(0, 120))
def test_shortening_keeps_the_end_and_the_width(text: str, width: int) -> None:
    short = _table.ellipsize(text, width)
    assert len(short) <= max(width, 0) or len(text) <= width
    if len(text) <= width:
        assert short == text
    elif width >= 2:
        head = (width - 1) // 3  # a third of the room for the start, the rest for the end
        assert len(short) == width
        assert short[head] == "…"
        assert text.startswith(short[:head]) and text.endswith(short[head + 1 :])
        assert len(short) - head - 1 >= head  # the end keeps at least as much as the start
