"""``aiomonitor -c`` against scripted servers: what a real monitor rarely does
on demand (closing mid-answer, never answering, asking twice for a password)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiomonitor
from aiomonitor._client import _interactive as _client
from aiomonitor._client import _oneshot
from aiomonitor._registry import Address

PROMPT = b"monitor >>> "


@contextmanager
def scripted_server(script: Callable[[socket.socket], None]) -> Iterator[Address]:
    """A one-connection server on a free port that runs *script* on the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            script(connection)
            done.wait(30)  # keep the connection open until the test has looked

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Address("127.0.0.1", listener.getsockname()[1])
    finally:
        done.set()
        thread.join(30)
        listener.close()


def read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_the_answer_is_what_lies_between_the_prompts_after_the_password() -> None:
    def script(connection: socket.socket) -> None:
        connection.sendall(b"Password: ")
        assert read_line(connection) == b"s3cret\r\n"
        connection.sendall(b"\r\nAsyncio Monitor: 3 tasks running\r\n\r\n" + PROMPT)
        request = read_line(connection)
        connection.sendall(b"answer to " + request.split(b"\xff\xf0")[-1].strip() + b"\r\n" + PROMPT)
        read_line(connection)  # exit
        connection.shutdown(socket.SHUT_WR)

    with scripted_server(script) as address:
        assert _oneshot.run_line(address, "ps", password="s3cret", timeout=10) == "answer to ps\n"


def test_a_connection_closed_mid_answer_is_no_answer() -> None:
    def script(connection: socket.socket) -> None:
        connection.sendall(PROMPT)
        read_line(connection)
        connection.sendall(b"Task ID  State\r\n1234  pen")
        connection.shutdown(socket.SHUT_WR)

    with scripted_server(script) as address, pytest.raises(_oneshot.NoAnswer, match="before the answer ended"):
        _oneshot.run_line(address, "ps", timeout=10)


def test_a_silent_monitor_costs_the_timeout_and_says_so() -> None:
    with scripted_server(lambda connection: None) as address:
        with pytest.raises(_oneshot.TimedOut) as caught:
            _oneshot.run_line(address, "ps", timeout=0.5)
    assert _oneshot.reason(caught.value, 0.5) == "no answer within 0.5 s"


def test_no_password_to_give_is_said_before_anything_is_sent() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        connection.sendall(b"Password: ")
        connection.settimeout(1)
        try:
            received.append(connection.recv(100))
        except OSError:
            received.append(b"")

    with scripted_server(script) as address, pytest.raises(_oneshot.PasswordNeeded):
        _oneshot.run_line(address, "ps", password=None, timeout=10)
    assert received == [b""], "nothing, not even the command, was sent to a password prompt"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([None, "pw"]))
def test_whatever_a_server_sends_ends_in_an_answer_or_a_one_line_reason(sent: bytes, password: str | None) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(sent)
        theirs.shutdown(socket.SHUT_WR)  # then it hangs up
        outcome: str | _oneshot.NoAnswer
        try:
            outcome = _oneshot._greeting(ours, _oneshot._Reader(ours, time.monotonic() + 5), "monitor >>> ", password)
        except _oneshot.NoAnswer as exc:
            outcome = exc
    if isinstance(outcome, _oneshot.NoAnswer):  # said on one printable line, and not a timeout: it hung up
        assert str(outcome).isprintable() and not isinstance(outcome, _oneshot.TimedOut)
    else:
        assert isinstance(outcome, str)


def test_completion_against_a_locked_monitor_spends_no_failed_login(caplog: pytest.LogCaptureFixture) -> None:
    """Tab asks the monitor over a second connection: without the password it
    must give up at the prompt, never send its question as a password."""
    loop = asyncio.new_event_loop()
    try:
        with aiomonitor.Monitor(loop, port=0, console_port=0, password="sesame", discoverable=False) as monitor:
            address = Address("127.0.0.1", monitor.port)
            with caplog.at_level(logging.WARNING, logger="aiomonitor"):
                assert _client.ServerQueries(address).command_names() == []
            assert "failed password" not in caplog.text
            names = _client.ServerQueries(address, password="sesame").command_names()
            assert "ps" in names and "where" in names
            assert _client.ServerQueries(address, enabled=False).command_names() == [], "a console asks nothing"
    finally:
        loop.close()
