"""Real app processes: signals, the examples, a uvloop policy."""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from ..support.apps import running_app
from ..support.helpers import Client, poll

SIGNAL_APP = """
import asyncio, signal, sys
import aiomonitor

async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print("got SIGUSR1", flush=True))
    if "--uvloop-policy" in sys.argv:
        assert type(loop).__module__.startswith("uvloop")
    with aiomonitor.start_monitor(loop, port=0, console_port=0) as monitor:
        print(f"monitor on 127.0.0.1:{monitor.port}", flush=True)
        await asyncio.sleep(3600)

if "--uvloop-policy" in sys.argv:
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
"""


@pytest.fixture
def signal_app(tmp_path: Path) -> Path:
    path = tmp_path / "signal_app.py"
    path.write_text(textwrap.dedent(SIGNAL_APP))
    return path


def test_signal_reaches_the_app_and_term_stops_it(signal_app: Path) -> None:
    with running_app(str(signal_app)) as (process, port, _), Client(port) as client:
        client.start()
        assert client.command("signal SIGUSR1") == f"Sent SIGUSR1 to process {process.pid}.\n"
        assert process.stdout is not None
        assert process.stdout.readline() == "got SIGUSR1\n"
        assert client.command("signal usr1").startswith("Sent SIGUSR1")
        assert process.stdout.readline() == "got SIGUSR1\n"
        assert client.command("signal NOPE") == "Unknown signal NOPE\n"
        client.send(b"signal TERM\r\n")
        assert process.wait(timeout=15) == -signal.SIGTERM


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop")
def test_an_app_with_a_uvloop_policy(signal_app: Path) -> None:
    # Our server thread must not inherit the app's policy, and must work.
    with running_app(str(signal_app), "--uvloop-policy") as (_, port, _), Client(port) as client:
        client.start()
        assert "main" in client.command("ps")
        assert client.command("console", b">>> ").startswith("This console is running in an asyncio event loop")
        assert client.command("type(asyncio.get_running_loop()).__module__", b">>> ") == "'uvloop'\n"


def test_the_trio_demo_tree_and_single_task_cancel() -> None:
    with running_app("examples/demo_trio.py", "-p", "0", "--console-port", "0") as (process, port, _):
        with Client(port) as client:
            client.start()
            tasks = {t["name"]: t for t in map(json.loads, client.command("ps -j").splitlines())}
            server = tasks["server"]
            handlers = [tasks[f"handler-{n}"] for n in range(3)]
            assert all(h["parent_id"] == server["id"] for h in handlers)  # the nursery's owner
            assert server["parent_id"] == tasks["__main__.main"]["id"]
            table = client.command("ps -w").splitlines()
            column = {
                name: next(line.index(name) for line in table if name in line) for name in ("server", "handler-0")
            }
            assert column["handler-0"] > column["server"]  # indented under its parent
            victim = handlers[1]["id"]
            assert client.command(f"cancel {victim}") == f"Cancelled task {victim}.\n"
            assert process.stdout is not None
            assert process.stdout.readline() == "handler-1 cleaned up\n"
            remaining = client.command("ps handler")
            assert "handler-0" in remaining and "handler-2" in remaining and "handler-1" not in remaining
            assert client.command("console", b">>> ").startswith("This console is running in a trio event loop")
            assert client.command("await trio.sleep(0); answer", b">>> ") == "42\n"


def test_the_web_server_example() -> None:
    with running_app("examples/web_server.py", "--http-port", "0", "-p", "0") as (_, port, banner):
        match = re.search(r"HTTP on 127.0.0.1:(\d+)", banner)
        assert match is not None
        http_port = int(match.group(1))
        with socket.create_connection(("127.0.0.1", http_port)) as fast:
            fast.sendall(b"GET /fast HTTP/1.0\r\n\r\n")
            assert b"hello from /fast" in b"".join(iter(lambda: fast.recv(4096), b""))
        with socket.create_connection(("127.0.0.1", http_port)) as slow, Client(port) as client:
            slow.sendall(b"GET /slow HTTP/1.0\r\n\r\n")
            client.start()
            assert client.command("r") == "1 requests served\n"  # the custom command, by alias
            assert poll(lambda: "web_server.py:25 in handle" in client.command("ps handle"))


def test_the_traced_demo_says_what_to_try_and_shows_it() -> None:
    argv = ("examples/demo_asyncio.py", "--trace", "-p", "0", "--console-port", "0")
    with running_app(*argv) as (process, port, _):
        assert process.stdout is not None
        advice = [process.stdout.readline() for _ in range(7)]
        assert "Worth trying first (tracing and step timing are on):\n" in advice
        assert any(line.split()[:1] == ["pstree"] for line in advice)
        with Client(port) as client:
            client.start()
            assert poll(lambda: "worker-0" in client.command("pstree"))
            # The poller waits for its fetch through asyncio.wait: the fetch hangs under it.
            under_poller = re.compile(r"upstream-poller .*\n[│ ]*└─ fetch-upstream .*\[wait\]")
            assert poll(lambda: under_poller.search(client.command("pstree")) is not None)
            header = client.command("ps -w").splitlines()[1]
            for column in ("Age", "Created at", "Steps", "Busy"):
                assert column in header
