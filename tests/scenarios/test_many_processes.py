"""Many processes: the registry, ``aiomonitor ls``, ``-P``, ``-c``, ``--all`` and ``run``.

Real processes throughout; each test has a registry directory of its own
(``AIOMONITOR_RUNTIME_DIR``), which the apps and the ``aiomonitor`` program
it starts inherit.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.apps import ROOT, running_app
from ..support.fleet import aiomonitor, listed_entries
from ..support.fleet import registry as registry  # autouse: a registry of each test's own
from ..support.helpers import poll

PROGRAMS = Path(__file__).parent.parent / "support" / "programs"


def listed() -> dict[int, dict[str, object]]:
    return {int(str(record["pid"])): record for record in listed_entries()}


@contextlib.contextmanager
def monitored(tag: str, *extra: str) -> Iterator[subprocess.Popen[str]]:
    with running_app(str(PROGRAMS / "monitored.py"), tag, *extra) as (process, _, _):
        yield process


def test_two_apps_are_listed_and_vanish_when_they_exit_or_are_killed(registry: Path) -> None:
    with monitored("first") as first, monitored("second") as second:
        entries = listed()
        assert set(entries) == {first.pid, second.pid}
        assert entries[first.pid]["framework"] == "asyncio"
        assert entries[first.pid]["program"] == "monitored.py first"
        assert entries[first.pid]["reachable"] is True and entries[first.pid]["locked"] is False
        tasks = entries[first.pid]["tasks"]
        assert isinstance(tasks, int) and tasks >= 2

        table = aiomonitor("ls").stdout.splitlines()
        assert table[0].split() == ["PID", "PROGRAM", "FRAMEWORK", "TASKS", "ADDRESS", "UPTIME"]
        assert any(line.split()[0] == str(second.pid) and "monitored.py second" in line for line in table[2:])

        first.send_signal(signal.SIGINT)  # a clean exit: the entry goes with the monitor
        first.wait(timeout=15)
        assert not list(registry.glob(f"{first.pid}-*.json")), "removed by the app itself, before any reader"
        assert set(listed()) == {second.pid}
        second.kill()  # kill -9: nothing removes the file, readers skip and delete it
        second.wait(timeout=15)
        assert list(registry.glob("*.json")), "the killed process's entry is still on disk until someone reads"
        assert listed() == {}
        assert not list(registry.glob("*.json"))
        assert aiomonitor("ls").stdout == "No running monitors found.\n"


def test_registry_is_private_to_the_user(registry: Path) -> None:
    with monitored("private"):
        assert stat.S_IMODE(registry.stat().st_mode) == 0o700
        (entry,) = registry.glob("*.json")
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
        assert "password" in json.loads(entry.read_text())


def test_a_registry_others_can_read_is_refused(registry: Path) -> None:
    registry.mkdir(mode=0o700)
    registry.chmod(0o755)
    with monitored("loose") as process:
        result = aiomonitor("ls")
        assert result.returncode == 1
        assert "can be read by others" in result.stderr and "chmod 700" in result.stderr
        assert not list(registry.glob("*.json")), "the app must not write its addresses there"
        assert process.poll() is None, "the app runs on; only the listing is lost"


def test_dash_p_runs_one_command_in_that_process_only() -> None:
    with monitored("alpha") as alpha, monitored("beta"):
        result = aiomonitor("-P", str(alpha.pid), "-c", "ps only-in")
        assert result.returncode == 0, result.stderr
        assert "only-in-alpha" in result.stdout and "only-in-beta" not in result.stdout
        assert "monitor >>>" not in result.stdout and "Type help" not in result.stdout  # the output alone

        by_name = aiomonitor("-P", "monitored.py beta", "-c", "ps -j only-in")
        assert [json.loads(line)["name"] for line in by_name.stdout.splitlines()] == ["only-in-beta"]

        ambiguous = aiomonitor("-P", "monitored.py", "-c", "ps")
        assert ambiguous.returncode == 1 and "give a pid" in ambiguous.stderr
        missing = aiomonitor("-P", "99999999", "-c", "ps")
        assert missing.returncode == 1 and "no monitor in process 99999999" in missing.stderr
        interactive = aiomonitor("-P", str(alpha.pid), "-c", "top")
        assert interactive.returncode == 1 and "interactive" in interactive.stderr
        both = aiomonitor("-P", str(alpha.pid), "-p", "50101", "-c", "ps")
        assert both.returncode == 2 and "give one of -P, -u and -p" in both.stderr


def test_a_reader_that_leaves_early_is_no_error() -> None:
    """``aiomonitor -c ps | head``: the pipe closes before the answer is written."""
    with monitored("piped") as app:
        reader = subprocess.Popen(
            [sys.executable, "-m", "aiomonitor", "-P", str(app.pid), "-c", "ps"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert reader.stdout is not None
        reader.stdout.close()  # before the interpreter it runs has even started
        _, errors = reader.communicate(timeout=60)
    assert reader.returncode == 0 and "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_dash_p_over_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with monitored("unix", path) as process:
        assert listed()[process.pid]["monitor"] == {"path": path}
        result = aiomonitor("-P", str(process.pid), "-c", "ps only-in")
        assert "only-in-unix" in result.stdout


def test_a_password_comes_from_the_environment_never_the_command_line() -> None:
    with running_app(str(PROGRAMS / "monitored.py"), "locked", env={"APP_PASSWORD": "s3cret"}) as (process, _, _):
        entry = listed()[process.pid]
        assert entry["password"] is True and entry["locked"] is True and entry["reachable"] is True
        assert "locked" in aiomonitor("ls").stdout.splitlines()[2].split()

        without = aiomonitor("-P", str(process.pid), "-c", "ps")
        assert without.returncode == 1 and "AIOMONITOR_PASSWORD" in without.stderr
        wrong = aiomonitor("-P", str(process.pid), "-c", "ps", env={"AIOMONITOR_PASSWORD": "guess"})
        assert wrong.returncode == 1 and "wrong password" in wrong.stderr
        right = aiomonitor("-P", str(process.pid), "-c", "ps only-in", env={"AIOMONITOR_PASSWORD": "s3cret"})
        assert right.returncode == 0 and "only-in-locked" in right.stdout
        assert "s3cret" not in right.stdout


def test_all_asks_every_process_and_reports_a_stopped_one() -> None:
    with monitored("one") as one, monitored("two") as two, monitored("three") as three:
        everyone = aiomonitor("--all", "-c", "ps only-in")
        assert everyone.returncode == 0, everyone.stderr
        for process, tag in ((one, "one"), (two, "two"), (three, "three")):
            assert f"== pid {process.pid}: monitored.py {tag} (asyncio" in everyone.stdout
            assert f"only-in-{tag}" in everyone.stdout

        os.kill(two.pid, signal.SIGSTOP)
        try:
            partial = aiomonitor("--all", "--prefix", "--timeout", "2", "-c", "ps only-in")
        finally:
            os.kill(two.pid, signal.SIGCONT)
        assert partial.returncode == 1
        assert f"pid {two.pid} (monitored.py two): no answer within 2 s" in partial.stderr
        lines = partial.stdout.splitlines()
        assert any(line.startswith(f"{one.pid}: ") and "only-in-one" in line for line in lines)
        assert any(line.startswith(f"{three.pid}: ") and "only-in-three" in line for line in lines)
        assert not any(line.startswith(f"{two.pid}:") for line in lines)


def test_one_command_to_a_port_nobody_listens_on() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = aiomonitor("-p", str(port), "-c", "ps")
    assert result.returncode == 1
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


@contextlib.contextmanager
def talking_to(*argv: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python *argv`` with its stdin, stdout and stderr ours, and the first
    line it printed (it is running once it prints); killed if the test fails first."""
    process = subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    try:
        yield process, process.stdout.readline()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize(
    "program",
    [
        pytest.param(("plain_asyncio.py", "3"), id="asyncio"),
        pytest.param(("plain_asyncio.py", "3", "uvloop"), id="uvloop"),
        pytest.param(("plain_trio.py", "3"), id="trio"),
    ],
)
def test_run_watches_a_program_that_never_imports_aiomonitor(program: tuple[str, ...]) -> None:
    script, *args = program
    path = str(PROGRAMS / script)
    alone = subprocess.run(
        [sys.executable, path, *args], input="hello\n", capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert alone.returncode == 3

    with talking_to("-m", "aiomonitor", "run", "--", path, *args) as (watched, first_line):
        assert poll(lambda: watched.pid in listed()), "the run program is listed"
        result = aiomonitor("-P", str(watched.pid), "-c", "ps plain")
        assert "plain-parked" in result.stdout, result.stdout + result.stderr
        assert listed()[watched.pid]["program"] == " ".join([script, *args])
        rest, errors = watched.communicate("hello\n", timeout=60)
    assert watched.returncode == alone.returncode
    assert first_line + rest == alone.stdout  # argv, __name__ and stdin as under plain python
    assert errors == alone.stderr
    assert listed() == {}


def test_run_passes_ctrl_c_to_the_program_as_python_would() -> None:
    def interrupted(*prefix: str) -> tuple[int, str]:
        with talking_to(*prefix, str(PROGRAMS / "plain_asyncio.py"), "0") as (process, first_line):
            assert first_line.startswith("argv")
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate("", timeout=60)  # EOF frees the thread reading stdin
        return process.returncode, errors.strip().splitlines()[-1]

    assert interrupted("-m", "aiomonitor", "run", "--") == interrupted()  # status and the exception's last line


def test_run_a_module_with_dash_m() -> None:
    with talking_to("-m", "aiomonitor", "run", "--trace", "-m", "tests.support.programs.plain_asyncio", "5") as (
        watched,
        first_line,
    ):
        assert first_line == "argv ['5'] __main__\n"
        assert poll(lambda: watched.pid in listed())
        result = aiomonitor("-P", str(watched.pid), "-c", "where plain-parked")
        # --trace took effect: the task the module made after its loop started has a creation site
        assert "(plain-parked) created at tests/support/programs/plain_asyncio.py:12 in main" in result.stdout, (
            result.stdout
        )
        _, errors = watched.communicate("bye\n", timeout=60)
    assert watched.returncode == 5 and errors == ""


def test_run_with_a_web_port_serves_the_program_s_tasks() -> None:
    with talking_to(
        "-m", "aiomonitor", "run", "-v", "--web-port", "0", "-m", "tests.support.programs.plain_asyncio", "0"
    ) as (
        watched,
        first_line,
    ):
        assert first_line == "argv ['0'] __main__\n"
        assert watched.stderr is not None
        announced = watched.stderr.readline()
        match = re.search(r"web dashboard at (http://\S+)", announced)
        assert match, announced
        base, token = match.group(1).split("/?token=")
        with urllib.request.urlopen(f"{base}/api/v1/tasks?filter=plain-parked&token={token}", timeout=15) as answer:
            page = json.loads(answer.read())
        assert [task["name"] for task in page["tasks"]] == ["plain-parked"]
        watched.communicate("bye\n", timeout=60)
    assert watched.returncode == 0


def test_run_without_a_program_says_what_it_needs() -> None:
    result = aiomonitor("run", "--trace")
    assert result.returncode == 2 and "what to run" in result.stderr
    missing = aiomonitor("run", "--", "no-such-script.py")
    assert missing.returncode == 2 and "can't open file 'no-such-script.py'" in missing.stderr


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="the message is for interpreters without sys.remote_exec")
def test_attach_before_3_14_points_to_run() -> None:
    result = aiomonitor("attach", str(os.getpid()))
    assert result.returncode == 2
    assert "Python 3.14" in result.stderr and "aiomonitor run" in result.stderr


def test_run_readonly_starts_a_read_only_monitor() -> None:
    with talking_to("-m", "aiomonitor", "run", "--readonly", "--", str(PROGRAMS / "plain_asyncio.py"), "0") as (
        watched,
        _,
    ):
        assert poll(lambda: watched.pid in listed())
        assert listed()[watched.pid]["console"] is None, "no console port"
        result = aiomonitor("-P", str(watched.pid), "-c", "cancel plain-parked")
        assert result.stdout == "cancel is disabled: this monitor is read-only\n", result.stdout + result.stderr
        assert "plain-parked" in aiomonitor("-P", str(watched.pid), "-c", "ps plain").stdout
        watched.communicate("bye\n", timeout=60)


def test_the_control_password_comes_from_the_environment_too() -> None:
    app_env = {"APP_PASSWORD": "reader", "APP_CONTROL_PASSWORD": "admin"}
    with running_app(str(PROGRAMS / "monitored.py"), "guarded", env=app_env) as (process, _, _):
        pid = str(process.pid)
        read_only = aiomonitor("-P", pid, "-c", "cancel only-in-guarded", env={"AIOMONITOR_PASSWORD": "reader"})
        assert read_only.stdout == "cancel needs control: type control, then the control password\n"
        assert process.poll() is None
        # The app awaits that task: cancelled, it ends, which is how we see the cancel happen.
        aiomonitor("-P", pid, "-c", "cancel only-in-guarded", env={"AIOMONITOR_CONTROL_PASSWORD": "admin"})
        assert poll(lambda: process.poll() is not None)
