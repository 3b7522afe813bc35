"""Services of many processes under ``aiomonitor run``: real servers, real workers.

uvicorn, hypercorn and gunicorn (test extras, unmodified) serve
``programs/asgi_app.py`` with two workers each, under concurrent slow
requests; ``ls`` must draw the workers under their supervisor and ``-P``
and ``--all`` must show every in-flight request as a task.  Each test has a
registry directory of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.apps import ROOT
from ..support.fleet import aiomonitor, listed_entries
from ..support.fleet import registry as registry  # autouse: a registry of each test's own
from ..support.helpers import poll

PROGRAMS = Path(__file__).parent.parent / "support" / "programs"
APP = "tests.support.programs.asgi_app:app"
#: Concurrent slow requests each test keeps in flight.
IN_FLIGHT = 6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def service(*argv: str) -> Iterator[subprocess.Popen[str]]:
    """``python *argv`` in its own process group; stopped with Ctrl-C (SIGINT), as a person would."""
    process = subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
        output = process.stdout.read() if process.stdout else ""
        if process.stdout is not None:
            process.stdout.close()
        print(output)  # shown when the test fails


def workers_of(supervisor: int, count: int) -> list[dict[str, object]]:
    """The listed workers of *supervisor*, once there are *count* of them."""
    found: list[dict[str, object]] = []

    def enough() -> bool:
        nonlocal found
        found = [entry for entry in listed_entries() if entry["parent"] == supervisor]
        return len(found) == count

    assert poll(enough, timeout=60), f"workers of {supervisor}: {found}"
    return found


@contextlib.contextmanager
def slow_requests(port: int, count: int = IN_FLIGHT) -> Iterator[None]:
    """*count* requests to ``/slow`` in flight at once, until the block ends."""
    clients = []
    try:
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=30)
            clients.append(client)
            client.sendall(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        yield
    finally:
        for client in clients:
            client.close()


def requests_seen(selector: str) -> int:
    """In-flight ``slow_request`` tasks over every process of the service *selector* names."""
    result = aiomonitor("-P", selector, "--prefix", "-c", "ps -j slow")
    if result.returncode != 0:
        return -1
    tasks = [json.loads(line.split(": ", 1)[1]) for line in result.stdout.splitlines()]
    return sum(1 for task in tasks if task["location"] and task["location"]["function"] == "slow_request")


SERVERS = [
    pytest.param(
        ("uvicorn", [APP, "--workers", "2", "--timeout-graceful-shutdown", "1", "--port"], "asyncio"), id="uvicorn"
    ),
    pytest.param(
        (
            "uvicorn",
            [APP, "--workers", "2", "--loop", "uvloop", "--timeout-graceful-shutdown", "1", "--port"],
            "asyncio",
        ),
        id="uvicorn-uvloop",
    ),
    pytest.param(
        (
            "hypercorn",
            ["-k", "trio", "--workers", "2", "--graceful-timeout", "1", APP, "-b", "127.0.0.1:{port}"],
            "trio",
        ),
        id="hypercorn-trio",
    ),
]


@pytest.mark.parametrize("server", SERVERS)
def test_run_follows_the_spawned_workers_of_a_server(server: tuple[str, list[str], str], registry: Path) -> None:
    name, arguments, framework = server
    port = free_port()
    argv = [arg.format(port=port) for arg in arguments]
    if argv[-1] == "--port":
        argv.append(str(port))
    with service("-m", "aiomonitor", "run", "-m", name, *argv) as supervisor:
        workers = workers_of(supervisor.pid, 2)
        for worker in workers:
            assert worker["framework"] == framework
            assert worker["service"] == {
                "pid": supervisor.pid,
                "name": name,
                "program": " ".join([name, *argv]),
                "started": pytest.approx(worker["started"], abs=60),
            }
            assert str(worker["program"]).startswith(f"{name} "), "named as people call it, never __main__.py"

        table = aiomonitor("ls").stdout.splitlines()
        assert table[2].split()[:2] == [str(supervisor.pid), name] and "(supervisor)" in table[2]
        drawn = sorted(line.split()[1] for line in table[3:5])
        assert drawn == sorted(str(worker["pid"]) for worker in workers), table
        assert table[3].startswith("├─ ") and table[4].startswith("└─ ")

        with slow_requests(port):
            assert poll(lambda: requests_seen(name) == IN_FLIGHT, timeout=60), requests_seen(name)
            everywhere = aiomonitor("--all", "-c", "ps slow")
            assert everywhere.returncode == 0, everywhere.stderr
            assert everywhere.stdout.count("slow_request") == IN_FLIGHT
            assert aiomonitor("-P", str(supervisor.pid), "-c", "pstree").returncode == 0
            one = aiomonitor("-P", str(workers[0]["pid"]), "-c", "doctor")
            assert one.returncode == 0 and one.stdout.strip(), one.stderr
        assert aiomonitor("-P", name).stderr.strip().endswith("give one pid")
    assert supervisor.returncode is not None
    # Workers may still be winding down when their supervisor has exited; each removes its own entry.
    assert poll(lambda: not list(registry.glob("*.json"))), "the service stopped: nothing of it is left in the registry"


def test_gunicorn_workers_are_listed_and_a_replaced_one_shows_up_under_its_new_pid(registry: Path) -> None:
    port = free_port()
    argv = [APP, "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "1"]
    with service("-m", "aiomonitor", "run", "-m", "gunicorn", *argv) as arbiter:
        workers = workers_of(arbiter.pid, 2)
        with slow_requests(port):
            assert poll(lambda: requests_seen("gunicorn") == IN_FLIGHT, timeout=60)

        gone = int(str(workers[0]["pid"]))
        os.kill(gone, signal.SIGKILL)
        replaced = workers_of(arbiter.pid, 2)
        pids = {int(str(worker["pid"])) for worker in replaced}
        assert gone not in pids and int(str(workers[1]["pid"])) in pids
        assert all(worker["framework"] == "asyncio" for worker in replaced)
    assert not list(registry.glob("*.json"))


def test_no_follow_and_plain_runs_behave_as_before(registry: Path) -> None:
    port = free_port()
    argv = [APP, "--workers", "2", "--timeout-graceful-shutdown", "1", "--port", str(port)]
    with service("-m", "aiomonitor", "run", "--no-follow", "-m", "uvicorn", *argv):
        assert poll(lambda: _answers(port))
        assert listed_entries() == [], "the supervisor runs no loop, and its spawned workers are not followed"
    port = free_port()
    with service("-m", "uvicorn", *argv[:-1], str(port)):
        assert poll(lambda: _answers(port))
        assert listed_entries() == []
    assert not registry.exists() or not list(registry.glob("*.json"))


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            return client.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def test_every_child_that_runs_a_loop_is_followed_the_others_cost_nothing(registry: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aiomonitor", "run", "--", str(PROGRAMS / "spawning.py")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "ready\n"
        entries = listed_entries()
        assert len(entries) == 2, "the spawn and forkserver children; no pool worker, no plain subprocess"
        assert {entry["framework"] for entry in entries} == {"asyncio", "trio"}
        assert all(entry["service"]["pid"] == process.pid for entry in entries)  # type: ignore[index]
        table = aiomonitor("ls").stdout
        assert f"{process.pid}  " in table and "(supervisor)" in table
        parked = aiomonitor("-P", "spawning.py", "-c", "ps parked")
        assert "parked-in-spawn-child" in parked.stdout and "parked_in_forkserver_child" in parked.stdout
        _, errors = process.communicate("\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert not list(registry.glob("*.json"))


def test_a_client_a_service_starts_is_not_followed(registry: Path, tmp_path: Path) -> None:
    """``aiomonitor ls`` run by a followed program lists; it is no worker itself."""
    script = tmp_path / "lister.py"
    script.write_text(
        "import asyncio, subprocess, sys\n"
        "async def main():\n"
        "    out = subprocess.run([sys.executable, '-m', 'aiomonitor', 'ls', '-j'], capture_output=True, text=True)\n"
        "    print(len(out.stdout.splitlines()), flush=True)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "run", "--", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n", "only the program's own monitor, not the client's"
