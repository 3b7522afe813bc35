"""The pytest plugin, as a user runs it: a real pytest in a subprocess, on a test that hangs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.fleet import aiomonitor
from ..support.fleet import registry as registry  # autouse: a registry of each test's own

HUNG_TEST = textwrap.dedent(
    """
    import asyncio
    import sys

    import pytest


    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(request):
        return request.param


    @pytest.mark.anyio
    async def test_waits_for_nobody(anyio_backend):
        heavy = [name for name in ("aiomonitor.monitor", "aiomonitor.backends") if name in sys.modules]
        print("HEAVY", heavy, flush=True)
        if anyio_backend == "trio":
            import trio

            never_set = trio.Event()
            with trio.move_on_after(WAIT):
                await never_set.wait()
        else:
            never_set = asyncio.Event()
            try:
                await asyncio.wait_for(never_set.wait(), WAIT)
            except asyncio.TimeoutError:
                pass
    """
)


def write_test(directory: Path, wait: float) -> Path:
    path = directory / "test_hung.py"
    path.write_text(f"WAIT = {wait}\n" + HUNG_TEST)
    return path


@pytest.fixture
def hung_run(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    backend, *options = request.param
    test = write_test(tmp_path, 60.0)
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{test}::test_waits_for_nobody[{backend}]",
            *options,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield run
    finally:
        run.kill()
        run.communicate()


def report_of(run: subprocess.Popen[str]) -> str:
    """The plugin's report, read from the run's stderr as it comes (bounded by faulthandler_timeout)."""
    assert run.stderr is not None
    lines = []
    for line in run.stderr:
        lines.append(line)
        if "the test goes on" in line:
            return "".join(lines)
    raise AssertionError("no report before the run ended:\n" + "".join(lines))


@pytest.mark.parametrize(
    "hung_run",
    [("asyncio", "--aiomonitor-hang=1"), ("trio", "--aiomonitor-hang=1")],
    indirect=True,
    ids=["asyncio", "trio"],
)
def test_a_hung_test_shows_its_tasks_while_it_still_runs(hung_run: subprocess.Popen[str]) -> None:
    report = report_of(hung_run)
    assert hung_run.poll() is None, "printed while the test runs"
    assert "test_hung.py::test_waits_for_nobody" in report and "has run 1 s" in report
    assert "test_waits_for_nobody" in report, "the waiting task's stack"
    qualified = "Event.wait" if sys.version_info >= (3, 11) else "in wait"
    assert qualified in report and "Event" in report.split("Waits at", 1)[1], report
    assert "never_set" in report or "not set" in report


@pytest.mark.parametrize(
    "hung_run", [("asyncio", "--aiomonitor-hang=1", "--aiomonitor-dump-dir=hangs")], indirect=True, ids=["asyncio"]
)
def test_a_hung_test_leaves_a_bundle_with_its_tasks(hung_run: subprocess.Popen[str], tmp_path: Path) -> None:
    report = report_of(hung_run)
    (bundle,) = (tmp_path / "hangs").glob("aiomonitor-*.json")
    assert f"hangs/{bundle.name}" in report, "where it is, as the option named the directory"
    data = json.loads(bundle.read_text())
    assert any("test_waits_for_nobody" in task["coro"] for task in data["tasks"])
    opened = aiomonitor("open", str(bundle), "-c", "ps")
    assert opened.returncode == 0 and "test_waits_for_nobody" in opened.stdout


def test_without_the_option_the_plugin_says_nothing_and_imports_nothing(tmp_path: Path) -> None:
    test = write_test(tmp_path, 0.2)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aiomonitor" not in done.stderr and "has run" not in done.stdout
    assert done.stdout.count("HEAVY []") == 2, "nothing of the monitor imported by an idle plugin"


def test_a_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    test = write_test(tmp_path, 0.1)
    (tmp_path / "pytest.ini").write_text("[pytest]\naiomonitor_hang = soon\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4 and "aiomonitor_hang must be seconds, not 'soon'" in done.stderr
    negative = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--aiomonitor-hang=-1", str(test)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert negative.returncode == 4 and "more than 0 seconds" in negative.stderr
