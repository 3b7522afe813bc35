"""The collector pause around heavy commands: deterministic facts only (the
stalls it prevents are measured in benchmarks/, not asserted here)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

import aiomonitor
from aiomonitor._gc import collector_paused, is_paused_by_us

from .conftest import open_monitor
from .helpers import Client, in_thread


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_the_collector_is_restored_even_when_the_work_raises() -> None:
    with pytest.raises(ValueError, match="boom"), collector_paused():
        assert not gc.isenabled()
        raise ValueError("boom")
    assert gc.isenabled()
    assert not is_paused_by_us()


@pytest.mark.usefixtures("collector_on")
def test_overlapping_pauses_restore_once_the_last_one_ends() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen_after_second: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_done.wait(5)
            seen_after_second.append(gc.isenabled())

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    with collector_paused():
        pass
    second_done.set()
    thread.join(5)
    assert seen_after_second == [False]  # the second pause ending did not switch it back on early
    assert gc.isenabled()


def test_an_app_that_switched_the_collector_off_is_left_alone() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


class GcWitness(aiomonitor.Monitor):
    def do_witness(self) -> None:
        """Report the collector's state inside and around a heavy computation"""
        inside = self._compute(gc.isenabled)
        self._sout.write(f"inside={inside} after={gc.isenabled()}\n")

    def do_explode(self) -> None:
        """A heavy computation that fails"""
        self._compute(lambda: 1 / 0)


@pytest.mark.anyio
@pytest.mark.usefixtures("collector_on")
async def test_commands_pause_the_collector_only_while_computing(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=GcWitness) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "witness") == "inside=False after=True\n"
        assert "ZeroDivisionError" in await in_thread(client.command, "explode")
        assert "tasks" in await in_thread(client.command, "ps")
        assert gc.isenabled()
        assert not is_paused_by_us()
