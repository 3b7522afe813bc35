"""Bundles: dumped from a running process (blocked or not), read back by
``aiomonitor open`` with the live commands' output, written by the monitor
itself when nobody is connected, checked against their schema, and
unbreakable by damaged or hostile files."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiomonitor._dump._files import DumpDirectory
from aiomonitor._dump._reading import BadBundle, load_bundle

from ..support.apps import ROOT
from ..support.fleet import aiomonitor, bundle_on_the_web
from ..support.fleet import registry as registry  # autouse: a registry of each test's own
from ..support.helpers import poll

PROGRAM = ROOT / "tests" / "support" / "programs" / "dumped_app.py"
SCHEMA = json.loads((resources.files("aiomonitor._dump") / "bundle.schema.json").read_text())
#: Durations and ages, which differ between a live answer and the bundle's by the time between them.
_DURATION = re.compile(r'\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d\ds\b|"age": [0-9.e-]+')


def same_but_ages(text: str) -> str:
    return _DURATION.sub("T", text)


@contextlib.contextmanager
def dumped_app(dump_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    app = subprocess.Popen(
        [sys.executable, str(PROGRAM), str(dump_dir)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert line.startswith("monitor on "), line + (app.stderr.read() if app.stderr else "")
        yield app, int(line.rsplit(":", 1)[1])
    finally:
        if app.poll() is None:
            app.kill()
        app.communicate()


def dump(port: int, output: Path) -> dict[str, Any]:
    result = aiomonitor("dump", "-p", str(port), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    assert (output.stat().st_mode & 0o777) == 0o600, "a bundle holds argv and source: its owner's only"
    data: dict[str, Any] = json.loads(output.read_text())
    return data


def test_a_dump_reads_back_with_the_output_the_live_commands_gave(tmp_path: Path) -> None:
    with dumped_app(tmp_path / "auto") as (_, port):
        assert poll(lambda: "sleeper" in aiomonitor("-p", str(port), "-c", "ps --stuck 0.3").stdout)
        bundle_file = tmp_path / "app.json"
        data = dump(port, bundle_file)
        jsonschema.validate(data, SCHEMA)
        for line in ("ps", "ps -g", "ps -j", "pstree", "where the-holder", "where contender-0", "ended", "doctor"):
            live = aiomonitor("-p", str(port), "-c", line)
            opened = aiomonitor("open", str(bundle_file), "-c", line)
            assert opened.returncode == 0, opened.stderr
            assert same_but_ages(opened.stdout) == same_but_ages(live.stdout), line
        where = aiomonitor("open", str(bundle_file), "-c", "where the-holder").stdout
        assert "await never.wait()  # holder-waits" in where, "source lines travel in the bundle"
        assert "Creation chain" in where
        stuck = aiomonitor("open", str(bundle_file), "-c", "ps --stuck 0.3").stdout
        assert "sleeper-0" in stuck and "the-holder" in stuck
        trend = aiomonitor("open", str(bundle_file), "-c", "trend").stdout
        assert "Event.wait" in trend and "largest change first" in trend
        refused = aiomonitor("open", str(bundle_file), "-c", "cancel the-holder")
        assert refused.stdout == "cancel is disabled: this monitor is read-only\n"
    assert data["process"]["framework"] == "asyncio" and data["process"]["argv"][0].endswith("dumped_app.py")
    names = {task["name"] for task in data["tasks"]}
    assert {"the-holder", "contender-0", "sleeper-4"} <= names
    assert all(task["stack"] for task in data["tasks"] if task["name"].startswith(("contender", "sleeper")))
    assert [entry["name"] for entry in data["history"]][-1:] == ["ended-quickly"]
    options = data["process"]["options"]
    assert options["password"] is False and options["control_password"] is False, "said to be set or not, no more"


def test_a_blocked_loop_is_dumped_as_it_is_and_by_itself_once_per_incident(tmp_path: Path) -> None:
    auto = tmp_path / "auto"
    with dumped_app(auto) as (app, port):
        assert app.stdin is not None and app.stdout is not None
        app.stdin.write("block 6\n")  # long enough for a client to start and dump it, however loaded the machine
        app.stdin.flush()
        assert poll(lambda: len(list(auto.glob("aiomonitor-*.json"))) == 1), "written with nobody connected"
        by_hand = dump(port, tmp_path / "by-hand.json")  # while the loop is still blocked
        assert app.stdout.readline() == "unblocked\n"
        app.stdin.write("block 1.5\n")
        app.stdin.flush()
        assert app.stdout.readline() == "unblocked\n"
        assert poll(lambda: len(list(auto.glob("aiomonitor-*.json"))) == 2), "one bundle per incident"
        app.stdin.write("exit\n")
        app.stdin.flush()
    assert by_hand["loop"]["blocked_for"] >= 0.5
    for path in sorted(auto.glob("aiomonitor-*.json")):
        data = json.loads(path.read_text())
        jsonschema.validate(data, SCHEMA)
        assert data["loop"]["blocked_for"] >= 0.5
        running = next(task for task in data["tasks"] if task["id"] == data["loop"]["running_task"])
        sources = [data["frames"][index][3] for index in running["stack"]]
        assert "time.sleep(seconds)  # the blocking line" in sources
        opened = aiomonitor("open", str(path), "-c", "ps")
        assert "WARNING: the event loop has been blocked" in opened.stdout
        assert "dumped_app.py" in opened.stdout and "blocking_call" in opened.stdout


def test_the_dump_directory_keeps_the_newest_and_survives_a_full_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = DumpDirectory(tmp_path / "dumps", max_dumps=3)
    written = [directory.write(iter(["{", f'"n": {n}', "}"])) for n in range(5)]
    assert all(path is not None for path in written)
    kept = sorted(p.name for p in (tmp_path / "dumps").glob("aiomonitor-*.json"))
    assert len(kept) == 3 and {p.name for p in written[-3:] if p} == set(kept)
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in (tmp_path / "dumps").glob("*.json"))
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the directory should be")
    broken = DumpDirectory(blocked / "dumps", max_dumps=3)
    with caplog.at_level("WARNING", logger="aiomonitor"):
        assert broken.write(iter(["{}"])) is None
        assert broken.write(iter(["{}"])) is None
    assert sum("could not write a dump" in r.getMessage() for r in caplog.records) == 1, "said once"


def test_open_serves_the_dashboard_on_a_bundle(tmp_path: Path) -> None:
    with dumped_app(tmp_path / "auto") as (_, port):
        bundle_file = tmp_path / "app.json"
        dump(port, bundle_file)
    with bundle_on_the_web(bundle_file) as url:
        base, token = url.split("/?token=")
        import urllib.request

        request = urllib.request.Request(f"{base}/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=15) as answer:
            status = json.loads(answer.read())
        assert status["recorded"]["pid"] != os.getpid() and status["recorded"]["taken"].startswith("20")
        request = urllib.request.Request(f"{base}/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=15) as answer:
            assert "the-holder" in {task["name"] for task in json.loads(answer.read())["tasks"]}


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("", "not JSON"),
        ("[1, 2]", "not an aiomonitor bundle"),
        (
            '{"format": "aiomonitor-bundle", "version": 7, "process": {"aiomonitor": "9.0"}}',
            "written by aiomonitor 9.0",
        ),
        ('{"format": "aiomonitor-bundle", "version": 1}', "a damaged bundle: missing"),
        ('{"format": "aiomonitor-bundle", "version": []}', "bundle version []"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_open_says_in_one_line_why_a_file_is_no_bundle(tmp_path: Path, content: str, said: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = aiomonitor("open", str(path), "-c", "ps")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr, result.stderr
    missing = aiomonitor("open", str(tmp_path / "absent.json"), "-c", "ps")
    assert missing.returncode == 1 and "No such file" in missing.stderr


@pytest.fixture(scope="module")
def sample_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("bundle")
    with dumped_app(directory / "auto") as (_, port):
        assert poll(lambda: "sleeper" in aiomonitor("-p", str(port), "-c", "ps --stuck 0.3").stdout)
        result = aiomonitor("dump", "-p", str(port), "-o", str(directory / "b.json"))
        assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads((directory / "b.json").read_text())
    return data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=5,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield from _paths(item, (*path, index))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_bundle_is_read_or_refused_in_one_line_never_crashes(
    sample_bundle: dict[str, Any], data: st.DataObject
) -> None:
    bundle = copy.deepcopy(sample_bundle)
    paths = [p for p in _paths(bundle) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent: Any = bundle
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        loaded = load_bundle(json.dumps(bundle))
    except BadBundle as exc:
        refusal = str(exc)
        assert len(refusal.splitlines()) == 1, refusal
    else:
        assert loaded.version == 1


def test_a_bundle_of_another_version_says_which_one_reads_it(sample_bundle: dict[str, Any]) -> None:
    newer = dict(sample_bundle, version=2)
    with pytest.raises(
        BadBundle, match=r"bundle version 2 \(written by aiomonitor .*\); aiomonitor .* reads version 1"
    ):
        load_bundle(json.dumps(newer))
    assert load_bundle(json.dumps(sample_bundle)).tasks
