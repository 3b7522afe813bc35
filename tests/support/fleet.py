"""For tests of many processes: a registry of the test's own, and the ``aiomonitor`` program run as a user would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .apps import ROOT


@pytest.fixture(autouse=True)
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry directory for this test alone, which the processes it starts inherit."""
    directory = tmp_path / "registry"
    monkeypatch.setenv("AIOMONITOR_RUNTIME_DIR", str(directory))
    monkeypatch.delenv("AIOMONITOR_PASSWORD", raising=False)
    return directory


def aiomonitor(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m aiomonitor *args``, its output captured, nothing on its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "aiomonitor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def listed_entries() -> list[dict[str, object]]:
    """What ``aiomonitor ls -j`` lists, oldest first."""
    result = aiomonitor("ls", "-j")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@contextlib.contextmanager
def bundle_on_the_web(bundle: Path) -> Iterator[str]:
    """``aiomonitor open BUNDLE --web`` running; yields the dashboard's address (with its token)."""
    viewer = subprocess.Popen(
        [sys.executable, "-m", "aiomonitor", "open", str(bundle), "--web"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert viewer.stdout is not None
        announced = viewer.stdout.readline()
        url = re.search(r"(http://\S+)", announced)
        assert url, announced + (viewer.stderr.read() if viewer.stderr else "")
        yield url.group(1)
    finally:
        viewer.terminate()
        viewer.communicate(timeout=30)
