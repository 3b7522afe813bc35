"""The pure logic behind the hostile-client defences, without sockets.

The same defences are attacked over real sockets in test_hostile.py.
"""

from __future__ import annotations

import contextvars
import io
import itertools
import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomonitor._server import _stdin_guard
from aiomonitor._server._door import FAILURE_DELAY, MAX_BURSTS, MAX_FAILURE_SPACING, Arrival, Lobby, LoginThrottle
from aiomonitor._server._pacing import CpuBudget
from aiomonitor.backends._records import TaskRecord
from aiomonitor.backends._tracing import CHAIN_CUT, CHAIN_KEEP, raw_record, to_record


def test_wrong_passwords_are_answered_one_after_another_ever_more_slowly() -> None:
    throttle = LoginThrottle()
    now = 100.0
    answers = []
    for _ in range(200):  # 200 guesses arriving at once, from many connections
        answers.append(now + throttle.failure("10.0.0.1", now))
    assert answers[0] == pytest.approx(now + FAILURE_DELAY)
    gaps = [b - a for a, b in itertools.pairwise(answers)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps))
    assert max(gaps) == pytest.approx(MAX_FAILURE_SPACING)
    assert sum(1 for at in answers if at <= now + 5) <= 30  # what 5 s of guessing gets answered


def test_the_memory_of_failures_fades() -> None:
    throttle = LoginThrottle()
    for _ in range(100):
        throttle.failure("h", 0.0)
    assert throttle.failure("h", 3600.0) == pytest.approx(FAILURE_DELAY)  # an hour later: a plain delay


def test_bursts_of_failures_are_reported_once_each_when_they_end() -> None:
    throttle = LoginThrottle()
    for at in range(5):
        throttle.failure("a", float(at))
    throttle.failure("b", 4.0)
    assert throttle.ended_bursts(5.0) == []  # still going
    ended = throttle.ended_bursts(30.0)
    assert sorted((b.host, b.failures) for b in ended) == [("a", 5), ("b", 1)]
    assert not throttle.has_bursts
    assert throttle.ended_bursts(60.0) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.01), st.floats(0, 0.1)), max_size=100))
def test_the_cpu_budget_keeps_the_share_over_any_stretch(steps: list[tuple[float, float]]) -> None:
    cpu = wall = 0.0
    budget = CpuBudget(share=0.05, burst=0.05, cpu_clock=lambda: cpu, wall_clock=lambda: wall)
    for spent, idle in steps:
        cpu += spent
        wall += spent + idle
        wall += budget.delay()  # the caller waits what it is told
    # Whatever the pattern of work, the CPU used never exceeds the burst plus the share of the time.
    assert cpu <= 0.05 + 0.05 * wall + 1e-9


def test_the_lobby_hands_over_who_spoke_and_turns_away_the_oldest_and_the_stale() -> None:
    lobby = Lobby(size=2)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        arrivals = [Arrival(ours, None, False, at=float(i)) for i, (ours, _) in enumerate(pairs)]
        assert lobby.add(arrivals[0]) == [] and lobby.add(arrivals[1]) == []
        assert lobby.add(arrivals[2]) == [arrivals[0]]  # full: the oldest goes
        assert lobby.spoken() == []
        pairs[2][1].send(b"pw")
        assert lobby.spoken() == [arrivals[2]]
        assert lobby.silent_since(1.5) == [arrivals[1]]
        assert len(lobby) == 0
    finally:
        lobby.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_a_creation_chain_of_any_length_keeps_a_bounded_tail() -> None:
    record = None
    for task_id in range(1_000_000):  # no recursion anywhere: a million links
        record = raw_record(task_id, None, record, float(task_id))
    readable = to_record(record)
    assert readable is not None and readable.depth == 999_999
    kept = []
    link: TaskRecord | None = readable
    while link is not None:
        kept.append(link.task_id)
        link = link.parent
    assert CHAIN_KEEP <= len(kept) <= CHAIN_CUT + CHAIN_KEEP
    assert kept == list(range(999_999, 999_999 - len(kept), -1))  # the nearest, in order
    chain = readable.chain(limit=20)
    assert [r.task_id for r in chain] == list(range(999_980, 1_000_000))
    assert chain[0].depth == 999_980  # how many more there were


def test_stdin_reads_are_refused_to_console_statements_only() -> None:
    real = io.StringIO("the app's line\n")
    saved = sys.stdin
    sys.stdin = real
    try:

        def in_statement() -> str:
            with _stdin_guard.console_statement():
                assert sys.stdin is not real  # the guard is in place while the statement runs
                with pytest.raises(OSError, match="standard input"):
                    sys.stdin.readline()
                with pytest.raises(OSError, match="standard input"):
                    next(iter(sys.stdin))
                return str(contextvars.copy_context().run(lambda: sys.stdin.closed))

        assert contextvars.copy_context().run(in_statement) == "False"  # other attributes pass through
        assert sys.stdin is real  # removed with the last statement
        assert sys.stdin.readline() == "the app's line\n"
    finally:
        sys.stdin = saved


def test_guessers_from_countless_hosts_are_tracked_in_bounded_memory() -> None:
    throttle = LoginThrottle()
    for n in range(MAX_BURSTS * 3):
        throttle.failure(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", 0.0)
    ended = throttle.ended_bursts(60.0)
    assert len(ended) == MAX_BURSTS + 1
    assert {b.host: b.failures for b in ended}["(other hosts)"] == MAX_BURSTS * 2
