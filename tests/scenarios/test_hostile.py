"""Clients as an attacker or a careless operator would be: the app must not notice.

Most tests run ``benchmarks/hostile_app.py`` (the attack kit's app) in a subprocess (a heartbeat, a
monitor, a side channel on stdin) and attack it over real sockets.  Each
names the promise it checks; figures for the same attacks, median and worst,
are in ``benchmarks/run.py --only hostile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from attacks import PASSWORD, attackers, flood, guess, hostile_app, idle_connections, log_in

from aiomonitor._server._door import LOBBY_SIZE

from ..conftest import _HAVE_UVLOOP, open_monitor
from ..support.helpers import CONSOLE_PROMPT, DEADLINE, Client, in_thread, open_fds, poll

FRAMEWORKS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(not _HAVE_UVLOOP, reason="uvloop is not installed")),
    "trio",
]


# -- 1. a pre-auth flood ---------------------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_flood_before_the_password_leaves_the_app_at_full_speed(framework: str) -> None:
    # What the monitor spends is CPU of its own threads (the loop is never asked
    # for anything before a password): measured as work done, not as the
    # heartbeat's pace, so a busy machine cannot fail it.  The pace itself,
    # median and worst, is benchmarks/hostile.py's (~0.95 of the unflooded rate).
    with hostile_app("--framework", framework, "--password", PASSWORD) as app:
        hung_up: list[int] = []
        with attackers(flood, 1, app.port, hung_up):
            share = app.monitor_cpu_share(1.5)
        assert hung_up, "the monitor kept reading a client that never gave a password"
        # About 0.12 of a core here; a door that kept reading the junk takes most of one.
        assert share <= 0.35, f"the monitor's threads used {share:.0%} of a core under the flood"
        with log_in(app.port) as operator:  # and the door still opens
            assert "Task" in operator.command("ps -n 1")


# -- 2. idle connections by the thousand ---------------------------------------------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_thousand_idle_connections_do_not_lock_the_operator_out(framework: str) -> None:
    options = ("--framework", framework, "--password", PASSWORD, "--max-sessions", "4", "--nofile", "1024")
    with hostile_app(*options) as app:
        with idle_connections(app.port, 1000):
            assert app.request("open 200") == "opened 200"  # the app still has descriptors
            with log_in(app.port) as operator:  # (within the helpers' deadline; the benchmark times it)
                assert "Task" in operator.command("ps -n 1")


def test_out_of_descriptors_the_monitor_waits_without_spinning() -> None:
    with hostile_app("--nofile", "64") as app:
        assert app.request("hog").startswith("hogging")
        try:
            with Client(app.port) as waiting:  # it waits in the kernel's backlog: accept fails with EMFILE
                busy = app.monitor_cpu_share(1.0)
                assert app.request("release") == "released"
                waiting.start()  # accepted once descriptors are free again
                assert "Task" in waiting.command("ps -n 1")
        finally:
            app.request("release")
        # Asleep between tries, not retrying accept in a loop (which takes a whole core).
        assert busy <= 0.05, f"the monitor's threads used {busy:.0%} of a core while accept failed"
        assert app.log().count("accept failed") <= 2  # once a minute, not per attempt


def test_a_silent_client_is_dropped_at_the_login_deadline(anyio_backend_name: str) -> None:
    async def scenario() -> None:
        with open_monitor(anyio_backend_name, password=PASSWORD, login_timeout=0.5) as monitor:
            with Client(monitor.port) as silent:
                farewell = await in_thread(silent.read_to_eof)
            assert b"No password within 0.5 s" in farewell

    anyio.run(scenario, backend=anyio_backend_name)


@pytest.mark.anyio
async def test_silent_clients_wait_apart_and_the_oldest_make_room(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, password=PASSWORD, max_pending_logins=1) as monitor:
        silent = [Client(monitor.port) for _ in range(LOBBY_SIZE + 1)]
        try:
            for client in silent:
                await in_thread(client.read_until, b"Password: ")
            # One more than the lobby holds: the oldest silent one made room.
            assert b"Too many clients are connecting" in await in_thread(silent[0].read_to_eof)
            with await in_thread(log_in, monitor.port) as operator:  # the silent don't count as logging in
                assert "Task" in await in_thread(operator.command, "ps -n 1")
        finally:
            for client in silent:
                client.close()


@pytest.mark.anyio
async def test_past_the_login_cap_the_slowest_talker_goes(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, password=PASSWORD, max_pending_logins=1) as monitor:
        with Client(monitor.port) as slow:
            await in_thread(slow.read_until, b"Password: ")
            slow.send(b"wrong\r\n")  # (its answer tells us it holds the one login place)
            await in_thread(slow.read_until, b"Wrong password")
            slow.send(b"s3c")  # then types, slowly
            with await in_thread(log_in, monitor.port) as operator:
                assert "Task" in await in_thread(operator.command, "ps -n 1")
            assert b"Too many clients are logging in" in await in_thread(slow.read_to_eof)


@pytest.mark.anyio
async def test_too_much_before_the_password_is_dropped(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, password=PASSWORD) as monitor, Client(monitor.port) as talker:
        await in_thread(talker.read_until, b"Password: ")
        with contextlib.suppress(OSError):  # the server may hang up mid-send
            talker.send(b"x" * 5000)
        with contextlib.suppress(ConnectionResetError):  # (a reset: our bytes were left unread)
            await in_thread(talker.read_to_eof)  # hung up, without a line ever ending
        assert b"monitor >>>" not in talker.buffer


# -- 3. password guessing ----------------------------------------------------------------


def test_guessing_the_password_is_slow_for_everyone_at_once() -> None:
    with hostile_app("--password", PASSWORD) as app:
        answered: list[int] = []
        with attackers(guess, 8, app.port, answered):
            time.sleep(5.0)  # the attack's length, not a synchronisation
        started = time.monotonic()
        with log_in(app.port) as operator:  # the right password is let in at once, even now
            assert "Task" in operator.command("ps -n 1")
            assert time.monotonic() - started < 2.0
        assert 0 < len(answered) <= 150, f"{len(answered)} wrong guesses answered in 5 s"
        failures_logged = app.log().count("failed password from")
        assert failures_logged == 1, f"a log line per guess ({failures_logged}), not per burst"


# -- 4 and 5. the console: a statement ends with its client; nothing reads the app's stdin ---------


@pytest.mark.anyio
async def test_a_running_statement_ends_with_its_client(anyio_backend_name: str) -> None:
    state = {"count": 0}
    framework = "trio" if anyio_backend_name == "trio" else "asyncio"
    with open_monitor(anyio_backend_name, locals={"state": state}) as monitor:
        client = Client(monitor.console_port)
        await in_thread(client.start, CONSOLE_PROMPT)
        client.send(f"while True:\r\n    state['count'] += 1; await {framework}.sleep(0.01)\r\n\r\n".encode())
        with anyio.fail_after(DEADLINE):
            while state["count"] < 3:  # it runs
                await anyio.sleep(0.01)
        client.close()  # the client vanishes mid-statement
        with anyio.fail_after(DEADLINE):  # it stops soon after...
            while True:
                before = state["count"]
                await anyio.sleep(0.05)
                if state["count"] == before:
                    break
        await anyio.sleep(0.2)
        assert state["count"] == before  # ...and stays stopped


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_help_and_stdin_readers_in_the_console_never_block_the_app(framework: str) -> None:
    with hostile_app("--framework", framework) as app, Client(app.port) as client:
        client.start()
        client.send(b"console\r\n")
        client.read_until(CONSOLE_PROMPT)
        ticks_before = int(app.request("ticks").split()[0])
        assert "help(obj)" in client.command("help()", CONSOLE_PROMPT)  # no pager on the app's stdin
        assert "Help on built-in function len" in client.command("help(len)", CONSOLE_PROMPT)
        for reader in ("input('name? ')", "breakpoint()", "__import__('sys').stdin.readline()"):
            assert "standard input" in client.command(reader, CONSOLE_PROMPT)
        assert client.command("1 + 1", CONSOLE_PROMPT) == "2\n"
        assert poll(lambda: int(app.request("ticks").split()[0]) > ticks_before + 50)  # the app ticks on


# -- 6. deep creation chains ----------------------------------------------------------------


def test_a_chain_of_200000_tasks_is_shown_short_and_pins_no_memory() -> None:
    with hostile_app("--trace") as app, Client(app.port) as client:
        client.start()
        rss_before = int(app.request("rss"))
        last = app.request("chain 200000").split()[1]
        rss_after = int(app.request("rss"))
        answer = client.command(f"where {last}")
        assert "Traceback" not in answer
        assert "199999 more creator(s) before these" not in answer  # some links are shown...
        shown = re.search(r"… (\d+) more creator\(s\) before these", answer)
        assert shown, answer
        links = answer.count(" created at ")
        assert int(shown.group(1)) + links == 200000  # ...and the rest counted
        assert links <= 20
        assert rss_after - rss_before <= 4 << 20, f"the chain kept {(rss_after - rss_before) >> 20} MB"


# -- 7. fork ---------------------------------------------------------------------------


def test_a_forked_child_keeps_no_monitor_socket() -> None:
    with hostile_app("--password", PASSWORD) as app, log_in(app.port) as session, Client(app.port) as waiting:
        waiting.read_until(b"Password: ")  # waiting in the lobby while the app forks
        child = int(app.request("fork").split()[1])
        try:
            # The child touched nothing of the parent's: the lobby still works...
            waiting.send(PASSWORD.encode() + b"\r\n")
            waiting.start()
            assert "Task" in session.command("ps -n 1")
            # ...and closing the monitor frees the port at once, with the child still alive.
            assert app.request("close-and-rebind") == "rebound"
        finally:
            os.kill(child, signal.SIGKILL)  # (the app's child: the app reaps it when it exits)
        assert b"shutting down" in session.read_to_eof()  # and the parent's clients were let go


# -- 8. monitors started and closed in any order --------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
async def test_monitors_closed_in_any_order_leave_nothing_behind(
    anyio_backend_name: str, order: tuple[int, int]
) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    fds_before = open_fds()
    if anyio_backend_name != "trio":  # (trio's instruments are checked by test_lifecycle)
        loop = asyncio.get_running_loop()
        factory_before = loop.get_task_factory()
    monitors: list[Any] = []
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            monitors.append(stack.enter_context(open_monitor(anyio_backend_name, trace_tasks=True)))
        for monitor in monitors:  # both trace
            with Client(monitor.port) as client:
                client.start()
                assert "Created" in await in_thread(client.command, "ps -w")
        for index in order:
            monitors[index].close()
    if anyio_backend_name != "trio":
        assert loop.get_task_factory() is factory_before
    assert poll(lambda: {t.ident for t in threading.enumerate()} <= threads_before | _worker_threads())
    assert poll(lambda: open_fds() <= fds_before)


def _worker_threads() -> set[int | None]:
    """anyio's worker threads of the test's own loop (they idle and expire on their own)."""
    return {t.ident for t in threading.enumerate() if t.name.startswith(("AnyIO worker", "asyncio_"))}


# -- 9. absurd arguments -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_absurd_arguments_get_one_line(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        for line in (
            "ps -n 99999999999999999999999",
            "ps -s " + "x" * 5000,
            "where 99999999999999999999999999999",
            "top -i 1e308",
            "top -i nan",
            "ended -n -1",
            "signal 99999",
            "cancel -1",
        ):
            answer = await in_thread(client.command, line)
            assert "Traceback" not in answer
            assert answer.count("\n") == 1, f"{line!r}: {answer!r}"


# -- 10. a slow reader --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def many_parked_tasks(backend_name: str, count: int) -> AsyncIterator[None]:
    """*count* tasks spawned the framework's own way, waiting until the block ends."""
    if backend_name == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(trio.sleep_forever)
            yield
            nursery.cancel_scope.cancel()
        return
    loop = asyncio.get_running_loop()
    forever = asyncio.Event()
    tasks = [loop.create_task(forever.wait()) for _ in range(count)]
    try:
        yield
    finally:
        forever.set()
        await asyncio.gather(*tasks)


@pytest.mark.anyio
async def test_a_client_that_never_reads_delays_only_itself(anyio_backend_name: str) -> None:
    # Enough tasks that the stuck client's ps output overflows every buffer
    # (trio spawns are slow to set up: fewer there, still far past 4 KiB).
    async with many_parked_tasks(anyio_backend_name, 30_000 if anyio_backend_name == "trio" else 100_000):
        # A write timeout far past the deadline: waiting for this client would fail the test.
        with open_monitor(anyio_backend_name, write_timeout=120) as monitor, socket.socket() as stuck:
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.connect(("127.0.0.1", monitor.port))
            stuck.sendall(b"ps\r\n")  # and never reads the answer
            with Client(monitor.port) as other:
                await in_thread(other.start)
                assert await in_thread(lambda: poll(lambda: "ps" in other.command("who").split()))
                answer = await in_thread(other.command, "ps -n 3")
                assert "(3 shown)" in answer
