"""Heavy sections (collector paused, short GIL switch interval): deterministic
facts only.  The stalls they prevent are measured in benchmarks/, not here."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from typing import TextIO, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aiomonitor
from aiomonitor._gil._heavy import COMPUTING_SWITCH_INTERVAL, heavy_section, is_active

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread


@pytest.fixture
def app_settings() -> Iterator[None]:
    """The collector on and the default switch interval, as most apps run."""
    was_on, interval = gc.isenabled(), sys.getswitchinterval()
    gc.enable()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(interval)
    if not was_on:
        gc.disable()


def fail_inside_a_heavy_section(seen: list[tuple[bool, float]]) -> None:
    with heavy_section():
        seen.append((gc.isenabled(), sys.getswitchinterval()))
        raise ValueError("boom")


@pytest.mark.usefixtures("app_settings")
def test_settings_are_restored_even_when_the_work_raises() -> None:
    seen: list[tuple[bool, float]] = []
    with pytest.raises(ValueError, match="boom"):
        fail_inside_a_heavy_section(seen)
    ((collector_on, interval),) = seen
    assert not collector_on
    assert interval == pytest.approx(COMPUTING_SWITCH_INTERVAL)
    assert gc.isenabled()
    assert sys.getswitchinterval() == pytest.approx(0.005)
    assert not is_active()


@pytest.mark.usefixtures("app_settings")
def test_overlapping_sections_restore_once_the_last_one_ends() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen_after_second: list[bool] = []

    def first() -> None:
        with heavy_section():
            first_in.set()
            second_done.wait(5)
            seen_after_second.append(gc.isenabled())

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    with heavy_section():
        pass
    second_done.set()
    thread.join(5)
    assert seen_after_second == [False]  # the second section ending did not restore early
    assert gc.isenabled()
    assert sys.getswitchinterval() == pytest.approx(0.005)


@pytest.mark.usefixtures("app_settings")
def test_what_the_app_changed_meanwhile_is_left_as_the_app_set_it() -> None:
    gc.disable()
    with heavy_section():
        sys.setswitchinterval(0.02)  # the app's own change, during a command
    assert not gc.isenabled()  # it was off: it stays off
    assert sys.getswitchinterval() == pytest.approx(0.02)
    gc.enable()


class HeavyWitness(aiomonitor.Monitor):
    def do_witness(self) -> None:
        """Report the settings inside and after a heavy computation"""
        inside = self._compute(lambda: (gc.isenabled(), sys.getswitchinterval()))
        self._sout.write(f"inside={inside[0]},{inside[1]:g} after={gc.isenabled()},{sys.getswitchinterval():g}\n")

    def do_explode(self) -> None:
        """A heavy computation that fails"""
        self._compute(lambda: 1 / 0)


@pytest.mark.anyio
@pytest.mark.usefixtures("app_settings")
async def test_commands_change_settings_only_while_computing(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, monitor=HeavyWitness) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        assert await in_thread(client.command, "witness") == "inside=False,0.001 after=True,0.005\n"
        assert "ZeroDivisionError" in await in_thread(client.command, "explode")
        assert "tasks" in await in_thread(client.command, "ps")
        assert gc.isenabled()
        assert sys.getswitchinterval() == pytest.approx(0.005)
        assert not is_active()


def test_a_writer_waiting_for_its_client_holds_no_output_turn() -> None:
    """More stuck clients than turns: another session's output still goes through."""
    from aiomonitor._commands._context import CommandBase
    from aiomonitor._gil import _heavy
    from aiomonitor._server._streams import HIGH_WATER, SessionOutput

    class Writer(CommandBase):
        def __init__(self, sout: SessionOutput) -> None:
            self._sout = cast("TextIO", sout)

    def stuck_output() -> SessionOutput:
        output = SessionOutput(lambda: None, set)
        output.write_encoded(b"x" * (HIGH_WATER + 1))  # a client that reads nothing: full
        return output

    stuck = [stuck_output() for _ in range(_heavy.OUTPUT_TURNS + 1)]
    writers = [threading.Thread(target=Writer(output)._write_all, args=((b"more",),)) for output in stuck]
    for thread in writers:
        thread.start()
    try:
        healthy = SessionOutput(lambda: None, set)
        done = threading.Thread(target=Writer(healthy)._write_all, args=((b"answer",),))
        done.start()
        done.join(timeout=10)
        assert not done.is_alive(), "the healthy session waited for a turn held by a stuck one"
        assert healthy.take() == b"answer"
    finally:
        for output in stuck:
            output.shut()
        for thread in writers:
            thread.join(timeout=10)


def test_a_shared_answer_is_buffered_by_reference_a_chunk_at_a_time() -> None:
    """An answer computed once for many clients is buffered as references to
    its chunks, each once the client has room for it; a writer waiting for a
    client that reads nothing is released when the writer task cuts the
    answer, which then ends with the marker and its prompt."""
    from aiomonitor._server._streams import HIGH_WATER, NOT_READING, SessionOutput

    answer = (b"a" * HIGH_WATER, b"b" * 10)
    reading = SessionOutput(lambda: None, set)
    reading.write_all_encoded(answer)
    assert reading.take(HIGH_WATER) is answer[0] and reading.take() is answer[1]

    not_reading = SessionOutput(lambda: None, set)
    not_reading.begin_answer()
    not_reading.write_all_encoded(answer)  # room: at once
    second = threading.Thread(target=not_reading.write_all_encoded, args=(answer,))
    second.start()  # over the high-water mark: waits for the client
    second.join(timeout=0.2)
    assert second.is_alive() and not_reading.take(3) == b"aaa"  # one take is not room enough
    not_reading.cut()
    second.join(timeout=10)
    assert not second.is_alive(), "a cut answer still held its writer"
    not_reading.write_all_encoded(answer)  # the rest of a cut answer is dropped
    not_reading.end_answer("monitor >>> ")
    assert bytes(not_reading.take()) == f"\r\n{NOT_READING}\r\nmonitor >>> ".encode()
    assert not not_reading.pending()


def test_a_cut_while_idle_sends_the_marker_and_the_prompt_again() -> None:
    from aiomonitor._server._streams import NOT_READING, SessionOutput

    output = SessionOutput(lambda: None, set)
    output.begin_answer()
    output.write("answer\n")
    output.end_answer("monitor >>> ")
    output.cut()  # the client read neither the answer nor its prompt
    assert bytes(output.take()) == f"\r\n{NOT_READING}\r\nmonitor >>> ".encode()


_writes = st.one_of(
    st.tuples(st.just("write"), st.binary(min_size=0, max_size=300)),
    st.tuples(st.just("take"), st.integers(1, 400)),
    st.tuples(st.just("end"), st.just(b"")),
)


@given(steps=st.lists(_writes, max_size=40))
def test_session_output_hands_on_what_was_written_in_order(steps: list[tuple[str, object]]) -> None:
    """Pieces kept as written (shared, not copied) come out in order, in takes
    of at most the size asked; from a writer that must not wait, an answer
    past HARD_LIMIT unsent is cut to one marker, and its prompt still follows."""
    from aiomonitor._server import _streams

    here: set[int | None] = {threading.get_ident()}  # never blocks: as the server's own thread writes
    output = _streams.SessionOutput(lambda: None, lambda: here)
    marker = f"\r\n{_streams.NOT_KEEPING_UP}\r\n".encode()
    pending, cutting = b"", False
    saved, _streams.HARD_LIMIT = _streams.HARD_LIMIT, 2000
    try:
        output.begin_answer()
        for kind, value in steps:
            if kind == "write":
                assert isinstance(value, bytes)
                output.write_encoded(value)
                if cutting:
                    continue
                if len(pending) > 2000:
                    pending, cutting = marker, True
                else:
                    pending += value
            elif kind == "take":
                assert isinstance(value, int)
                chunk = bytes(output.take(value))
                assert chunk == pending[:value]
                pending = pending[len(chunk) :]
            else:
                output.end_answer(">>> ")
                output.begin_answer()
                pending, cutting = pending + b">>> ", False
    finally:
        _streams.HARD_LIMIT = saved
    assert bytes(output.take(len(pending) + 1)) == pending
    assert not output.pending()
