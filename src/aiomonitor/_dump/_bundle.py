"""The bundle: one JSON document with everything a monitor shows of a process.

Written here by ``dump`` (and ``/api/v1/dump``, and the automatic dumps),
read back by ``aiomonitor open`` (``_reading``).  Its shape is ``bundle.schema.json`` (version
``VERSION``); a reader of another version says so instead of guessing.

What makes it cheap to write at 100,000 tasks:

* Frames and creation records are tables, referred to by index: alike tasks
  share their frames, and a creation chain is written once however many
  tasks it leads to.
* The text is made a task at a time, handing the GIL over between pieces
  (``_gil``): one ``json.dumps`` of the whole would hold it for the whole
  encoding, a stall of the app's loop of half a second.
* It reads like every query, from the calling worker thread, never entering
  the loop: a blocked loop is dumped as it is.

Times: wall-clock times stay as they are; monotonic ones (when a task was
created, ended, asked to cancel) are written as they were and shifted on
reading, so that ages read as at the moment of the dump plus the time since
the bundle was opened.
"""

from __future__ import annotations

import datetime
import json
import linecache
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._gil._passes import pieces, release_gently, yielding
from .._query import _queries as _query
from .._query._doctor_query import CancelMemory, diagnose
from .._query._stalls import Stall, StallRecorder
from .._query._trend import TrendRecorder
from .._query._watchdog import LoopWatchdog
from .._render import _json
from .._version import __version__
from ..backends import (
    Backend,
    Canceller,
    EndedTask,
    FrameInfo,
    TaskRecord,
    TaskSnapshot,
    Wait,
)

#: What the document says it is, and the version of its shape.
FORMAT = "aiomonitor-bundle"
VERSION = 1

#: Tasks per piece of text: the GIL is handed over between pieces.
TASKS_PER_PIECE = 256


@dataclass(frozen=True)
class BundleSource:
    """What a dump reads: the monitor's parts, and what to say of the process."""

    backend: Backend
    recorder: StallRecorder
    records_stalls: bool
    watchdog: LoopWatchdog
    cancel_memory: CancelMemory
    #: The monitor's settings worth knowing (ports, tracing, limits), no secret.
    options: Mapping[str, Any]
    #: The flight recorder (``trend``, ``ps --stuck``), if it runs.
    trend: TrendRecorder | None = None


# -- writing -------------------------------------------------------------------------


class _Tables:
    """Frames and creation records, each written once and referred to by index."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self._frame_index: dict[FrameInfo, int] = {}
        self.records: list[list[Any]] = []
        self._record_index: dict[int, int] = {}
        self._pinned: list[TaskRecord] = []  # id() keys stay unique while the records live

    def frame(self, frame: FrameInfo | None) -> int | None:
        if frame is None:
            return None
        index = self._frame_index.get(frame)
        if index is None:
            index = self._frame_index[frame] = len(self.frames)
            source = linecache.getline(frame.filename, frame.lineno).strip()
            self.frames.append([frame.filename, frame.lineno, frame.name, source])
        return index

    def release(self) -> None:
        """Free the tables a slice at a time (see release_gently)."""
        release_gently(self.frames, self._frame_index, self.records, self._record_index, self._pinned)

    def stack(self, frames: Any) -> list[int | None]:
        return [self.frame(frame) for frame in frames]

    def record(self, record: TaskRecord | None) -> int | None:
        """The record's index, writing its creators first (each once)."""
        if record is None:
            return None
        known = self._record_index.get(id(record))
        if known is not None:
            return known
        chain: list[TaskRecord] = []
        walk: TaskRecord | None = record
        while walk is not None and id(walk) not in self._record_index:
            chain.append(walk)
            walk = walk.parent
        for item in reversed(chain):  # the oldest creator first: a parent's index is always known
            parent = None if item.parent is None else self._record_index[id(item.parent)]
            self._record_index[id(item)] = len(self.records)
            self._pinned.append(item)
            self.records.append([item.task_id, self.frame(item.created), parent, item.created_at, item.depth])
        return self._record_index[id(record)]

    def canceller(self, canceller: Canceller | None) -> dict[str, Any] | None:
        if canceller is None:
            return None
        return {
            "task_id": canceller.task_id,
            "task_name": canceller.task_name,
            "stack": self.stack(canceller.stack),
            "requested_at": canceller.requested_at,
        }

    def wait(self, wait: Wait, suspect: bool) -> dict[str, Any]:
        return {
            "task_id": wait.task_id,
            "kind": wait.kind,
            "target": wait.target,
            "binding": wait.binding,
            "at": self.frame(wait.at),
            "detail": wait.detail,
            "holders": [
                {"task_id": h.task_id, "evidence": h.evidence, "at": self.frame(h.at), "inferred": h.inferred}
                for h in wait.holders
            ],
            "awaited_task": wait.awaited_task,
            "orphaned": wait.orphaned,
            "suspect": suspect,
        }


def _versions(framework: str) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for package in ("anyio", framework if framework != "asyncio" else "", "uvloop"):
        if not package:
            continue
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _process(backend: Backend, options: Mapping[str, Any]) -> dict[str, Any]:
    from .._registry import program_name

    argv = list(sys.argv) if sys.argv and sys.argv[0] else list(getattr(sys, "orig_argv", ["python"]))
    return {
        "pid": os.getpid(),
        "argv": argv,
        "program": " ".join([program_name(argv[0]), *argv[1:]]),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "framework": backend.framework,
        "aiomonitor": __version__,
        "versions": _versions(backend.framework),
        "options": dict(options),
    }


def _stall(tables: _Tables, stall: Stall) -> dict[str, Any]:
    return {
        "started_at": stall.started_at,
        "started_monotonic": stall.started_monotonic,
        "duration": stall.duration,
        "task_id": stall.task_id,
        "task_name": stall.task_name,
        "stack": tables.stack(stall.stack),
        "samples": stall.samples,
        "matching_samples": stall.matching_samples,
    }


def _task(
    tables: _Tables, task: TaskSnapshot, details: tuple[Any, ...] | None, waiting_since: float | None
) -> dict[str, Any]:
    stack, record, canceller = details if details is not None else ([], None, None)
    return {
        "id": task.id,
        "name": task.name,
        "state": task.state,
        "coro": task.coro,
        "location": tables.frame(task.location),
        "parent_id": task.parent_id,
        "created": tables.frame(task.created),
        "created_at": task.created_at,
        "creator_id": task.creator_id,
        "steps": task.steps,
        "busy": task.busy,
        "longest_step": task.longest_step,
        "stack": tables.stack(stack),
        "record": tables.record(record),
        "canceller": tables.canceller(canceller),
        "waiting_since": waiting_since,
    }


def bundle_text(source: BundleSource) -> Iterator[str]:
    """The bundle as pieces of JSON text (ASCII), to be written one after another.

    Runs in a worker thread inside a heavy section (see ``_gil``): it reads
    the tasks once, as they are (``one_look``), and gives the GIL back
    between pieces.
    """
    backend = source.backend
    taken_at, taken_monotonic = time.time(), time.monotonic()
    dumps = json.dumps
    tables = _Tables()
    with backend.one_look():
        blocked = _query.blocked_loop(backend, source.watchdog)
        details = {item[0]: item[1:] for item in backend.details()}
        snapshots = [task for chunk in backend.snapshot_columns() for task in chunk.snapshots()]
        suspect_waits = backend.suspect_waits()
        suspects = {(w.task_id, w.kind, w.target) for w in suspect_waits}
        waits = [tables.wait(w, (w.task_id, w.kind, w.target) in suspects) for w in yielding(backend.waits())]
        edges = backend.await_edges()
        cancelling = backend.cancelling()
        history = backend.history() if backend.keeps_history else []
        diagnosis = diagnose(backend, source.recorder, source.cancel_memory, source.trend, suspect_waits)
        doctor = _json.diagnosis(diagnosis)
        stuck = source.trend.stuck_since() if source.trend is not None else {}
        totals = backend.trace_totals()
        running = backend.current_task_id() if blocked is not None else None
        thread_stack = list(blocked.stack) if blocked is not None and blocked.task_id is None else []
    head = {
        "format": FORMAT,
        "version": VERSION,
        "taken": {
            "at": taken_at,
            "iso": datetime.datetime.fromtimestamp(taken_at, datetime.timezone.utc).isoformat(timespec="seconds"),
            "monotonic": taken_monotonic,
        },
        "process": _process(backend, source.options),
        "loop": {
            "traced": backend.traced,
            "keeps_history": backend.keeps_history,
            "timed": backend.timed,
            "blocked_for": _blocked_for(blocked, source),
            "running_task": running,
            "thread_stack": tables.stack(thread_stack),
            "trace_totals": list(totals) if totals is not None else None,
        },
    }
    yield dumps(head)[:-1]  # the object stays open: the tables and lists follow
    yield ', "tasks": ['
    for index, tasks in enumerate(pieces(snapshots, TASKS_PER_PIECE)):
        piece = [_task(tables, t, details.get(t.id), stuck.get(t.id)) for t in tasks]
        yield ("," if index else "") + ",".join(map(dumps, piece))
    release_gently(snapshots, details, stuck)
    recorder = source.recorder
    tail = {
        "waits": waits,
        "await_edges": [list(edge) for edge in edges],
        "cancelling": [list(item) for item in cancelling],
        "history": [_ended(tables, item) for item in history],
        "stalls": {
            "recording": source.records_stalls,
            "threshold": recorder.threshold,
            "count": recorder.count,
            "items": [_stall(tables, stall) for stall in recorder.stalls()],
            "lag": [list(item) for item in recorder.lag_history()],
        },
        "doctor": doctor,
        "trend": source.trend.to_json() if source.trend is not None else None,
    }
    yield "]"
    for key, value in tail.items():
        yield f", {dumps(key)}: "
        yield from json_pieces(value)
        if isinstance(value, (list, dict)):
            release_gently(value)
    yield ', "frames": ['
    for index, frames in enumerate(pieces(tables.frames, TASKS_PER_PIECE * 4)):
        yield ("," if index else "") + ",".join(map(dumps, frames))
    yield '], "records": ['
    for index, records in enumerate(pieces(tables.records, TASKS_PER_PIECE * 4)):
        yield ("," if index else "") + ",".join(map(dumps, records))
    yield "]}\n"
    tables.release()


#: Containers longer than this are written item by item (see json_pieces).
SMALL_CONTAINER = 64


def json_pieces(value: Any) -> Iterator[str]:
    """*value* as JSON text, in pieces of at most ``TASKS_PER_PIECE`` items.

    ``json.dumps`` of a whole list runs in one C call that never hands the
    GIL over: the 100,000 waits of a bundle took 280 ms in one piece, the
    app's loop waiting all along.  Big lists are written in batches of
    items and big dicts key by key, recursively, so each call to the encoder
    is small; small containers stay whole (fewer, larger pieces).
    """
    if not _big(value):
        yield json.dumps(value)
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + json.dumps({key: 0})[1:-4] + ": "  # the key as json writes it
            yield from json_pieces(item)
        yield "}"
    else:
        yield "["
        batch: list[Any] = []
        separator = ""
        for item in value:
            if _big(item):
                if batch:
                    yield separator + ",".join(map(json.dumps, batch))
                    batch, separator = [], ","
                yield separator
                yield from json_pieces(item)
                separator = ","
            else:
                batch.append(item)
                if len(batch) == TASKS_PER_PIECE:
                    yield separator + ",".join(map(json.dumps, batch))
                    batch, separator = [], ","
        if batch:
            yield separator + ",".join(map(json.dumps, batch))
        yield "]"


def _big(value: Any) -> bool:
    """Longer than SMALL_CONTAINER, or holding such a container at any depth
    (a small container is looked through: a cost bounded by its size)."""
    if isinstance(value, dict):
        return len(value) > SMALL_CONTAINER or any(map(_big, value.values()))
    if isinstance(value, (list, tuple)):
        return len(value) > SMALL_CONTAINER or any(map(_big, value))
    return False


def _blocked_for(blocked: _query.BlockedLoop | None, source: BundleSource) -> float:
    """How long the loop has been stuck: the stall recorder's heartbeat knows
    since the block began, the watchdog's probe only since it asked."""
    if blocked is None:
        return 0.0
    age = source.recorder.heartbeat_age() if source.records_stalls else None
    return max(blocked.blocked_for, age or 0.0)


def _ended(tables: _Tables, item: EndedTask) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "coro": item.coro,
        "record": tables.record(item.record),
        "ended_at": item.ended_at,
        "outcome": item.outcome,
        "canceller": tables.canceller(item.canceller),
        "task_id": item.task_id,
    }
