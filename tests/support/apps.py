"""Real app processes for tests: started, their monitor port read, stopped."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


@contextlib.contextmanager
def running_app(
    *argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """Start ``python *argv`` (with *env* added); yield it, the monitor port it prints, and that line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # bounded by the app printing its banner (faulthandler_timeout guards)
            match = re.search(r"-p (\d+)", line) or re.search(r"monitor on 127.0.0.1:(\d+)", line)
            if match:
                yield process, int(match.group(1)), line
                break
        else:
            raise AssertionError(f"the app exited early with {process.wait()}")
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()
