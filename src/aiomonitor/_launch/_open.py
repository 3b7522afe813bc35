"""``aiomonitor open FILE``: a monitor over a bundle, for the read-only commands.

The bundle's tasks stand behind the backend interface (``_dump``), so the
monitor is the same one that serves a live process: ``ps``, ``pstree``,
``where``, ``ended``, ``doctor``, ``lag``... print what they printed when
the bundle was taken.  It is read-only, without a console, listens on a
unix socket in a private directory (or serves the dashboard with
``--web``), and is listed nowhere.
"""

from __future__ import annotations

import datetime
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .._dump._bundle_backend import BundleBackend
from .._dump._reading import BadBundle, Bundle, load_bundle, seed_source_lines
from .._dump._replay import ReplayedStalls, ReplayedTrend, ReplayedWatchdog
from .._query._stalls import StallRecorder
from .._query._trend import TrendRecorder
from .._query._watchdog import LoopWatchdog
from ..backends import Backend
from ..monitor import Monitor

#: The largest file read as a bundle (a 100,000-task bundle is ~30 MB).
MAX_BUNDLE_BYTES = 2 * 1024**3


class BundleMonitor(Monitor):
    """A read-only monitor whose tasks are a bundle's."""

    def __init__(self, bundle: Bundle, **options: Any) -> None:
        self._bundle = bundle
        super().__init__(
            None,
            backend=BundleBackend(bundle),
            readonly=True,
            console_enabled=False,
            discoverable=False,
            stall_threshold=bundle.stall_threshold if bundle.records_stalls else None,
            max_stalls=max(1, len(bundle.stalls)),
            trend_interval=bundle.trend.interval if bundle.trend is not None else None,
            **options,
        )
        self.intro = intro(bundle)

    def _watchdog_for(self, backend: Backend) -> LoopWatchdog:
        return ReplayedWatchdog(backend, self._bundle.blocked_for)

    def _stall_recorder_for(self, backend: Backend, threshold: float, max_stalls: int) -> StallRecorder:
        return ReplayedStalls(backend, self._bundle)

    def _trend_recorder_for(self, backend: Backend, interval: float) -> TrendRecorder:
        return ReplayedTrend(backend, self._bundle)

    def _recorded_process(self) -> dict[str, Any] | None:
        process = self._bundle.process
        return {
            "pid": process.get("pid"),
            "program": process.get("program"),
            "taken": self._bundle.taken_iso,
            "taken_at": self._bundle.taken_at,
        }


def intro(bundle: Bundle) -> str:
    """The greeting: what the bundle is of, and when it was taken."""
    process = bundle.process
    taken = datetime.datetime.fromtimestamp(bundle.taken_at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    ago = _ago(time.time() - bundle.taken_at)
    blocked = f"; its loop had been blocked for {bundle.blocked_for:.1f} s" if bundle.blocked_for else ""
    return (
        f"\nA bundle of pid {process.get('pid')} ({process.get('program')}), {bundle.framework}, "
        f"{len(bundle.tasks)} task{'' if len(bundle.tasks) == 1 else 's'}{blocked}.\n"
        f"Taken {taken} ({ago}). A record of that moment: read-only commands only.\n"
        "Type help for available commands\n\n"
    )


def _ago(seconds: float) -> str:
    if seconds < 0:
        return "in the future: the clocks disagree"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return f"{int(seconds)} s ago"


def read_bundle(path: str) -> Bundle:
    """The bundle in *path*; ``BadBundle`` (one line) for a file that isn't one, or can't be read."""
    try:
        size = os.path.getsize(path)
        if size > MAX_BUNDLE_BYTES:
            raise BadBundle(f"{path}: {size} bytes, more than a bundle ever is")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadBundle(f"{path}: {exc.strerror or exc}") from None
    try:
        bundle = load_bundle(data)
    except BadBundle as exc:
        raise BadBundle(f"{path}: {exc}") from None
    seed_source_lines(bundle)
    return bundle


def open_bundle(bundle: Bundle, web_port: int | None = None) -> tuple[BundleMonitor, tempfile.TemporaryDirectory[str]]:
    """A started monitor over *bundle*, on a unix socket in a private directory
    (removed with it), and on *web_port* too when given (0: a free one)."""
    directory = tempfile.TemporaryDirectory(prefix="aiomonitor-open-")
    options: dict[str, Any] = {"path": os.path.join(directory.name, "monitor.sock"), "port": 0}
    if web_port is not None:
        options["web_port"] = web_port
    monitor = BundleMonitor(bundle, **options)
    try:
        monitor.start()
    except BaseException:
        directory.cleanup()
        raise
    return monitor, directory
