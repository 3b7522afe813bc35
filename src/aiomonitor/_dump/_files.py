"""A directory of bundles, bounded: the automatic dumps land here.

Every file is ``aiomonitor-PID-YYYYmmdd-HHMMSS.json`` (with ``-N`` when two
land in one second), written under a private temporary name and renamed into
place, so a reader never sees half a bundle, and readable by its owner only:
a bundle holds the program's arguments and source lines.  Past ``max_dumps``
files in the directory (the processes of a service may share one) the
oldest go.  A full disk or a missing directory is logged once, never raised
into the app: the dump is lost, nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .._registry import write_private_file

log = logging.getLogger("aiomonitor")

#: What every bundle file's name looks like (``glob``).
PATTERN = "aiomonitor-*.json"


class DumpDirectory:
    """Where a monitor's automatic bundles go, and how many are kept."""

    def __init__(self, path: str | os.PathLike[str], max_dumps: int) -> None:
        if max_dumps < 1:
            raise ValueError(f"max_dumps must be 1 or more, not {max_dumps!r}")
        self.path = Path(path)
        self.max_dumps = max_dumps
        self._complained = False

    def write(self, pieces: Iterable[str]) -> Path | None:
        """Write one bundle; its path, or None when it could not be written (logged once)."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            final = self._free_name()
            write_private_file(final, pieces, encoding="ascii")
        except OSError as exc:
            if not self._complained:
                self._complained = True
                log.warning("aiomonitor: could not write a dump to %s: %s (said once)", self.path, exc)
            return None
        self._prune()
        return final

    def _free_name(self) -> Path:
        stem = f"aiomonitor-{os.getpid()}-{time.strftime('%Y%m%d-%H%M%S')}"
        candidate = self.path / f"{stem}.json"
        number = 1
        while candidate.exists():
            number += 1
            candidate = self.path / f"{stem}-{number}.json"
        return candidate

    def _prune(self) -> None:
        """The oldest bundles beyond ``max_dumps`` go (another process may have taken one already)."""
        found = []
        for path in self.path.glob(PATTERN):
            with contextlib.suppress(OSError):
                found.append((path.stat().st_mtime, path.name, path))
        found.sort()
        for _, _, path in found[: max(0, len(found) - self.max_dumps)]:
            with contextlib.suppress(OSError):
                path.unlink()
