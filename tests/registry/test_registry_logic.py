"""The registry, argument splitting and hooks, in this process (see
``test_many_processes`` for the same through real programs)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aiomonitor
from aiomonitor import _registry
from aiomonitor._client import _fleet
from aiomonitor._launch import _attach
from aiomonitor._launch._autostart import AutoMonitor, Launch
from aiomonitor._launch._run import split_arguments

from ..support.helpers import poll

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "registry"
    monkeypatch.setenv("AIOMONITOR_RUNTIME_DIR", str(directory))
    return directory


def entry(pid: int = 1, program: str = "app.py", **changes: Any) -> _registry.Entry:
    fields: dict[str, Any] = {
        "pid": pid,
        "program": program,
        "argv": (program,),
        "framework": "asyncio",
        "monitor": _registry.Address("127.0.0.1", 50101),
        "console": None,
        "password": False,
        "prompt": "monitor >>> ",
        "started": time.time(),
        "version": aiomonitor.__version__,
    }
    fields.update(changes)
    return _registry.Entry(**fields)


def test_entries_round_trip_through_json() -> None:
    original = entry(console=_registry.Address(path="/run/app.sock"), password=True)
    assert _registry.Entry.from_json(json.loads(json.dumps(original.to_json()))) == original


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=6,
)


@settings(max_examples=60)
@given(st.dictionaries(st.sampled_from(list(entry().to_json())) | st.text(), json_values))
def test_any_json_in_an_entry_file_is_read_or_skipped_never_raised(data: dict[str, Any]) -> None:
    parsed = _registry.Entry.from_json({"format": _registry.FORMAT, **data})
    assert parsed is None or isinstance(parsed.monitor, _registry.Address)


def test_entries_of_dead_or_reused_pids_are_skipped_and_deleted(registry: Path) -> None:
    live = _registry.register(entry(pid=os.getpid()))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = _registry.register(entry(pid=int(dead.stdout)))
    # Our pid, but a start time that is not ours: a newer process reusing a dead one's pid.
    reused = registry / f"{os.getpid()}-reused.json"
    reused.write_text(json.dumps(dict(entry(pid=os.getpid(), program="older").to_json(), proc_start="1")))
    assert [found.program for found in _registry.live_entries()] == ["app.py"]
    assert live.path.exists() and not gone.path.exists() and not reused.exists()
    live.remove()
    live.remove()  # idempotent
    assert _registry.live_entries() == []


def test_a_forked_child_never_removes_its_parents_entry(registry: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from aiomonitor import _registry
        from tests.registry.test_registry_logic import entry
        registration = _registry.register(entry(pid=os.getpid()))
        child = os.fork()
        if child == 0:
            registration.remove()
            os._exit(0)
        os.waitpid(child, 0)
        print(registration.path.exists())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        # The test module imports the tests' helpers, which import the raw client beside the benchmarks.
        env={**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")},
    )
    assert result.stdout.strip() == "True", result.stderr


def test_an_entry_goes_at_exit_when_the_app_never_closes_its_monitor(registry: Path) -> None:
    script = "import asyncio, aiomonitor; aiomonitor.Monitor(asyncio.new_event_loop(), port=0, console_port=0).start()"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert registry.is_dir() and not list(registry.iterdir())


def test_a_symlinked_registry_is_refused(registry: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    registry.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(_registry.UnsafeRegistry, match="not a directory"):
        _registry.registry_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_a_registry_owned_by_someone_else_is_refused(registry: Path) -> None:
    registry.mkdir(mode=0o700)
    os.chown(registry, 12345, -1)
    with pytest.raises(_registry.UnsafeRegistry, match="belongs to uid 12345"):
        _registry.registry_dir()


def test_the_registry_is_created_private(registry: Path) -> None:
    assert _registry.registry_dir() == registry
    assert stat.S_IMODE(registry.stat().st_mode) == 0o700


def test_find_by_pid_or_unique_program() -> None:
    entries = [entry(10, "api.py --port 80"), entry(11, "worker.py 1"), entry(12, "worker.py 2")]
    assert _registry.find("11", entries).pid == 11
    assert _registry.find("api", entries).pid == 10
    with pytest.raises(_registry.NotFound, match="matches processes 11, 12"):
        _registry.find("worker", entries)
    with pytest.raises(_registry.NotFound, match="no monitored program matches 'cron'"):
        _registry.find("cron", entries)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59.9, "59s"), (61, "1m01s"), (3600 * 5 + 120, "5h02m"), (86400 * 3 + 3600, "3d01h")],
)
def test_uptime_is_short(seconds: float, shown: str) -> None:
    assert _fleet.format_uptime(seconds) == shown


option_words = st.lists(
    st.sampled_from(["--trace", "--timing", "-v", "--no-console", "--port", "--history"]), max_size=4
)
program_words = st.lists(st.text(min_size=1, max_size=8), max_size=5)


@given(
    option_words,
    st.sampled_from(["--", "-m", ""]),
    st.text(min_size=1, max_size=10).filter(lambda word: not word.startswith("-")),
    program_words,
)
def test_the_program_and_its_arguments_are_never_taken_for_ours(
    options: list[str], separator: str, target: str, program_args: list[str]
) -> None:
    ours: list[str] = []
    for option in options:
        ours += [option, "7"] if option in ("--port", "--history") else [option]
    argv = [*ours, *([separator] if separator else []), target, *program_args]
    parsed_ours, script, module, rest = split_arguments(argv)
    assert parsed_ours == ours
    assert (module if separator == "-m" else script) == target
    assert rest == program_args


def test_a_monitor_registers_while_it_runs_unless_told_not_to(registry: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        with aiomonitor.Monitor(loop, port=0, console_port=0) as monitor:
            (found,) = _registry.live_entries()
            assert found.pid == os.getpid() and found.monitor.port == monitor.port
            assert found.console is not None and found.console.port == monitor.console_port
        assert _registry.live_entries() == []
        with aiomonitor.Monitor(loop, port=0, console_enabled=False, discoverable=False):
            assert _registry.live_entries() == []
    finally:
        loop.close()


def test_every_asyncio_run_gets_a_monitor_and_the_hooks_come_out_again() -> None:
    set_running_loop = asyncio.events._set_running_loop
    auto = AutoMonitor(lambda: Launch({"port": 0, "console_port": 0}))
    auto.install()
    seen: list[tuple[int, int | None]] = []

    async def look() -> None:
        (found,) = _registry.live_entries()
        seen.append((os.getpid(), found.monitor.port))

    try:
        asyncio.run(look())
        asyncio.run(look())  # the first loop is closed: a fresh monitor for the second
    finally:
        auto.close()
    assert len(seen) == 2 and seen[0][1] != seen[1][1]
    assert _registry.live_entries() == []
    assert asyncio.events._set_running_loop is set_running_loop


async def test_attach_starts_a_monitor_on_the_running_loop(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("attach is for asyncio processes")
    _attach.start_in_running_loop({"port": 0, "console_port": 0})  # what the attach script runs in the target
    try:
        assert poll(lambda: len(_registry.live_entries()) == 1)
        (attached,) = _attach._ATTACHED
        assert attached._loop is asyncio.get_running_loop()
    finally:
        while _attach._ATTACHED:
            _attach._ATTACHED.pop().close()
    assert _registry.live_entries() == []


@pytest.mark.parametrize(
    ("argv0", "name"),
    [
        ("/venv/lib/python3.11/site-packages/uvicorn/__main__.py", "uvicorn"),
        ("/srv/app/serve.py", "serve.py"),
        ("gunicorn", "gunicorn"),
        ("__main__.py", "__main__.py"),
    ],
)
def test_programs_are_named_as_people_call_them(argv0: str, name: str) -> None:
    assert _registry.program_name(argv0) == name


def test_an_entry_of_a_service_round_trips_with_its_parent_and_taken_ports() -> None:
    service = _registry.Service(40, "uvicorn", "uvicorn app:app --workers 2", 1000.0)
    original = entry(pid=41, parent=40, service=service, taken_ports=(("monitor", 50101),), started=5.0)
    record = json.loads(json.dumps(original.to_json()))
    assert record["service"]["name"] == "uvicorn" and record["taken_ports"] == {"monitor": 50101}
    assert _registry.Entry.from_json(record) == original
    older = {key: value for key, value in record.items() if key not in {"parent", "service", "taken_ports"}}
    assert _registry.Entry.from_json(older) == entry(pid=41, started=5.0), "an entry from before these fields reads"


def test_the_service_comes_from_the_environment_and_a_damaged_one_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_registry.SERVICE_ENV, "")  # restored (unset) after the test, whatever export() does
    assert _registry.current_service() is None
    _registry.Service(7, "hypercorn", "hypercorn -k trio app:app", 5.0).export()
    assert _registry.current_service() == _registry.Service(7, "hypercorn", "hypercorn -k trio app:app", 5.0)
    for damaged in ("{", "[]", '{"pid": "x"}', ""):
        monkeypatch.setenv(_registry.SERVICE_ENV, damaged)
        assert _registry.current_service() is None


def tree_lines(entries: list[_registry.Entry]) -> list[str]:
    return [f"{branch}{node.pid}" for branch, node in _fleet.process_tree(entries)]


def test_ls_draws_workers_under_their_supervisor_and_nested_children_under_theirs() -> None:
    uvicorn = _registry.Service(100, "uvicorn", "uvicorn app:app --workers 2", 1.0)
    entries = [
        entry(pid=7, started=0.5),  # another program, alone
        entry(pid=101, parent=100, service=uvicorn, started=2.0),
        entry(pid=102, parent=100, service=uvicorn, started=3.0),
        entry(pid=150, parent=140, service=uvicorn, started=3.5),  # started by a forkserver nobody lists
        entry(pid=103, parent=101, service=uvicorn, started=4.0),  # a worker's own child
    ]
    assert tree_lines(entries) == ["7", "100", "├─ 101", "│  └─ 103", "├─ 102", "└─ 150"]
    supervisor = _fleet.process_tree(entries)[1][1]
    assert supervisor == uvicorn, "a supervisor without a monitor stands in as its service"


def test_a_supervisor_that_runs_a_loop_is_its_own_row() -> None:
    gunicorn = _registry.Service(200, "gunicorn", "gunicorn app:app -w 2", 1.0)
    entries = [
        entry(pid=201, parent=200, service=gunicorn, started=2.0),
        entry(pid=200, parent=1, service=gunicorn, started=1.5),
    ]
    assert tree_lines(entries) == ["200", "└─ 201"]
    assert all(isinstance(node, _registry.Entry) for _, node in _fleet.process_tree(entries))


pids = st.integers(1, 12)


@settings(max_examples=80)
@given(st.lists(st.tuples(pids, st.none() | pids, st.none() | pids), max_size=10))
def test_every_entry_is_drawn_exactly_once_whatever_the_parents(
    shapes: list[tuple[int, int | None, int | None]],
) -> None:
    """Reused pids, a process its own parent, parents in a circle: each entry still appears once."""
    entries = [
        entry(
            pid=pid,
            parent=parent,
            service=None if root is None else _registry.Service(root, "svc", "svc", 0.0),
            started=float(index),
        )
        for index, (pid, parent, root) in enumerate(shapes)
    ]
    drawn = _fleet.process_tree(entries)
    drawn_entries = [node for _, node in drawn if isinstance(node, _registry.Entry)]
    assert sorted(map(id, drawn_entries)) == sorted(map(id, entries))
    for branch, _ in drawn:
        assert branch == "" or branch.endswith(("├─ ", "└─ "))


def test_dash_p_names_a_whole_service_by_its_supervisor_or_its_name() -> None:
    svc = _registry.Service(100, "uvicorn", "uvicorn app:app", 1.0)
    workers = [
        entry(pid=101, program="uvicorn app:app", service=svc),
        entry(pid=102, program="uvicorn app:app", service=svc),
    ]
    other = entry(pid=300, program="worker.py")
    entries = [*workers, other]
    assert _fleet.service_of("100", entries) == workers
    assert _fleet.service_of("uvicorn", entries) == workers
    assert _fleet.service_of("101", entries) is None, "a worker's own pid is that worker"
    assert _fleet.service_of("worker.py", entries) is None
    lone = [entry(pid=1, program="app.py"), entry(pid=2, program="app.py")]
    assert _fleet.service_of("app.py", lone) is None, "two unrelated programs: still ambiguous"


def test_a_taken_port_falls_back_to_a_free_one_when_asked_and_says_so(registry: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        with aiomonitor.Monitor(loop, port=0, console_enabled=False) as first:
            with pytest.raises(OSError, match="in use"):
                aiomonitor.Monitor(loop, port=first.port, console_enabled=False).start()
            with aiomonitor.Monitor(loop, port=first.port, console_enabled=False, port_fallback=True) as second:
                assert second.port not in (0, first.port)
                (mine,) = [found for found in _registry.live_entries() if found.monitor.port == second.port]
                assert dict(mine.taken_ports) == {"monitor": first.port}
                assert dict(next(e for e in _registry.live_entries() if e.monitor.port == first.port).taken_ports) == {}
    finally:
        loop.close()
