"""Reading a bundle back (``aiomonitor open``): every field checked, nothing trusted.

A bundle may come from another version of aiomonitor, be cut short, or be
written by someone who means harm: anything that is not a bundle this
version reads is a ``BadBundle`` with a one-line reason, never a traceback,
and nothing in it is run or imported.  Monotonic times are shifted onto this
process's clock (see ``_bundle``).
"""

from __future__ import annotations

import json
import linecache
import time
from dataclasses import dataclass, field
from typing import Any

from .._query._stalls import Stall
from .._query._trend import Sample
from .._version import __version__
from ..backends import Canceller, EndedTask, FrameInfo, Holder, TaskRecord, TaskSnapshot, Wait
from ._bundle import FORMAT

#: Versions this reader reads (an older shape that still reads the same).
READABLE = frozenset({1})


class BadBundle(ValueError):
    """Not a bundle this version reads; the message says why, in one line."""


@dataclass(frozen=True)
class Trend:
    """The flight recorder's part of a bundle, checked."""

    interval: float
    window: float
    keys: dict[int, tuple[str, FrameInfo | None]]
    samples: list[Sample]


@dataclass(frozen=True)
class Bundle:
    """A bundle, read back into the records the monitor's commands read."""

    version: int
    #: When it was taken (wall clock), and the same as ISO 8601 text.
    taken_at: float
    taken_iso: str
    process: dict[str, Any]
    traced: bool
    keeps_history: bool
    timed: bool
    blocked_for: float
    running_task: int | None
    thread_stack: list[FrameInfo]
    trace_totals: tuple[int, int | None] | None
    tasks: list[TaskSnapshot]
    stacks: dict[int, list[FrameInfo]]
    records: dict[int, TaskRecord]
    cancellers: dict[int, Canceller]
    waits: list[Wait]
    suspects: list[Wait]
    await_edges: list[tuple[int, int, str]]
    cancelling: list[tuple[int, float | None]]
    history: list[EndedTask]
    records_stalls: bool
    stall_threshold: float
    stall_count: int
    stalls: list[Stall]
    lag: list[tuple[float, float]]
    doctor: dict[str, Any]
    #: The source line of each frame, as the dumping process read it.
    sources: dict[tuple[str, int], str]
    #: The flight recorder's censuses, if it ran, and since when each task
    #: waited where it waited (monotonic, shifted like every such time).
    trend: Trend | None = field(default=None)
    waiting_since: dict[int, float] = field(default_factory=dict)

    @property
    def framework(self) -> str:
        return str(self.process.get("framework", "?"))


def load_bundle(text: str | bytes) -> Bundle:
    """Read a bundle; ``BadBundle`` with a one-line reason for anything else."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadBundle(f"not JSON: {_first_line(exc)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadBundle("not an aiomonitor bundle (no 'format': 'aiomonitor-bundle')")
    version = data.get("version")
    if not isinstance(version, int) or version not in READABLE:
        written_by = _dig(data, "process", "aiomonitor")
        by = f" (written by aiomonitor {written_by})" if isinstance(written_by, str) else ""
        raise BadBundle(
            f"bundle version {version!r}{by}; aiomonitor {__version__} reads version "
            f"{', '.join(map(str, sorted(READABLE)))}"
        )
    try:
        return _decode(data, time.monotonic())
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise BadBundle(f"a damaged bundle: {_describe(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, not {type(value).__name__}")
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, not {type(value).__name__}")
    return float(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else _float(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, not {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, not {type(value).__name__}")
    return value


class _Reader:
    """The tables of a bundle being read, and the shift of its monotonic times."""

    def __init__(self, data: dict[str, Any], shift: float) -> None:
        self.shift = shift
        self.frames: list[FrameInfo] = []
        self.sources: dict[tuple[str, int], str] = {}
        for row in _list(data["frames"]):
            filename, lineno, name, source = _list(row)
            frame = FrameInfo(_str(filename), _int(lineno), _str(name))
            self.frames.append(frame)
            self.sources[(frame.filename, frame.lineno)] = _str(source)
        self.records: list[TaskRecord] = []
        for row in _list(data["records"]):
            task_id, created, parent, created_at, depth = _list(row)
            parent_index = _opt_int(parent)
            if parent_index is not None and not 0 <= parent_index < len(self.records):
                raise ValueError("a creation record names a creator written after it")
            self.records.append(
                TaskRecord(
                    _int(task_id),
                    self.frame(created),
                    None if parent_index is None else self.records[parent_index],
                    self.time(created_at) or 0.0,
                    _int(depth),
                )
            )

    def frame(self, index: Any) -> FrameInfo | None:
        position = _opt_int(index)
        if position is None:
            return None
        if not 0 <= position < len(self.frames):
            raise IndexError(f"frame {position} of {len(self.frames)}")
        return self.frames[position]

    def stack(self, indexes: Any) -> list[FrameInfo]:
        return [frame for frame in map(self.frame, _list(indexes)) if frame is not None]

    def record(self, index: Any) -> TaskRecord | None:
        position = _opt_int(index)
        if position is None:
            return None
        if not 0 <= position < len(self.records):
            raise IndexError(f"record {position} of {len(self.records)}")
        return self.records[position]

    def time(self, value: Any) -> float | None:
        """A monotonic time of the dumping process, on this process's clock."""
        moment = _opt_float(value)
        return None if moment is None else moment + self.shift

    def canceller(self, data: Any) -> Canceller | None:
        if data is None:
            return None
        item = _dict(data)
        task_name = item.get("task_name")
        return Canceller(
            _opt_int(item.get("task_id")),
            None if task_name is None else _str(task_name),
            tuple(self.stack(item.get("stack", []))),
            self.time(item.get("requested_at")),
        )

    def wait(self, data: Any) -> Wait:
        item = _dict(data)
        binding = item.get("binding")
        holders = tuple(
            Holder(_int(h["task_id"]), _str(h["evidence"]), self.frame(h.get("at")), bool(h["inferred"]))
            for h in map(_dict, _list(item.get("holders", [])))
        )
        return Wait(
            _int(item["task_id"]),
            _str(item["kind"]),
            _int(item["target"]),
            None if binding is None else _str(binding),
            self.frame(item.get("at")),
            _str(item.get("detail", "")),
            holders,
            _opt_int(item.get("awaited_task")),
            bool(item.get("orphaned", False)),
        )


def _decode(data: dict[str, Any], now_monotonic: float) -> Bundle:
    taken = _dict(data["taken"])
    reader = _Reader(data, now_monotonic - _float(taken["monotonic"]))
    loop = _dict(data["loop"])
    tasks: list[TaskSnapshot] = []
    stacks: dict[int, list[FrameInfo]] = {}
    records: dict[int, TaskRecord] = {}
    cancellers: dict[int, Canceller] = {}
    waiting_since: dict[int, float] = {}
    for item in map(_dict, _list(data["tasks"])):
        task_id = _int(item["id"])
        since = reader.time(item.get("waiting_since"))
        if since is not None:
            waiting_since[task_id] = since
        tasks.append(
            TaskSnapshot(
                task_id,
                _str(item["name"]),
                _str(item["state"]),
                _str(item["coro"]),
                reader.frame(item.get("location")),
                _opt_int(item.get("parent_id")),
                reader.frame(item.get("created")),
                reader.time(item.get("created_at")),
                _opt_int(item.get("creator_id")),
                _opt_int(item.get("steps")),
                _opt_float(item.get("busy")),
                _opt_float(item.get("longest_step")),
            )
        )
        stacks[task_id] = reader.stack(item.get("stack", []))
        record = reader.record(item.get("record"))
        if record is not None:
            records[task_id] = record
        canceller = reader.canceller(item.get("canceller"))
        if canceller is not None:
            cancellers[task_id] = canceller
    raw_waits = [_dict(w) for w in _list(data.get("waits", []))]
    waits = [reader.wait(w) for w in raw_waits]
    suspects = [wait for wait, raw in zip(waits, raw_waits, strict=True) if raw.get("suspect")]
    stalls = _dict(data["stalls"])
    totals = loop.get("trace_totals")
    if totals is not None:
        created, ended = _list(totals)
        trace_totals: tuple[int, int | None] | None = (_int(created), _opt_int(ended))
    else:
        trace_totals = None
    trend = data.get("trend")
    return Bundle(
        version=_int(data["version"]),
        taken_at=_float(taken["at"]),
        taken_iso=_str(taken["iso"]),
        process=_dict(data["process"]),
        traced=bool(loop["traced"]),
        keeps_history=bool(loop["keeps_history"]),
        timed=bool(loop["timed"]),
        blocked_for=_float(loop["blocked_for"]),
        running_task=_opt_int(loop.get("running_task")),
        thread_stack=reader.stack(loop.get("thread_stack", [])),
        trace_totals=trace_totals,
        tasks=tasks,
        stacks=stacks,
        records=records,
        cancellers=cancellers,
        waits=waits,
        suspects=suspects,
        await_edges=[(_int(a), _int(b), _str(how)) for a, b, how in map(_list, _list(data.get("await_edges", [])))],
        cancelling=[(_int(t), reader.time(at)) for t, at in map(_list, _list(data.get("cancelling", [])))],
        history=[_read_ended(reader, item) for item in map(_dict, _list(data.get("history", [])))],
        records_stalls=bool(stalls.get("recording", True)),
        stall_threshold=_float(stalls["threshold"]),
        stall_count=_int(stalls["count"]),
        stalls=[_read_stall(reader, item) for item in map(_dict, _list(stalls.get("items", [])))],
        lag=[(_float(at), _float(peak)) for at, peak in map(_list, _list(stalls.get("lag", [])))],
        doctor=_dict(data.get("doctor") or {}),
        sources=reader.sources,
        trend=None if trend is None else _read_trend(_dict(trend)),
        waiting_since=waiting_since,
    )


def _read_trend(data: dict[str, Any]) -> Trend:
    keys: dict[int, tuple[str, FrameInfo | None]] = {}
    for group in map(_dict, _list(data["groups"])):
        place = group.get("location")
        location = None
        if place is not None:
            where = _dict(place)
            location = FrameInfo(_str(where["file"]), _int(where["line"]), _str(where["function"]))
        keys[_int(group["key"])] = (_str(group["coro"]), location)
    samples = []
    for item in map(_dict, _list(data["samples"])):
        groups = []
        for key, count, left in map(_list, _list(item["groups"])):
            if _int(key) not in keys:
                raise ValueError(f"a census names group {key}, which the bundle does not describe")
            groups.append((_int(key), _int(count), _int(left)))
        by_state = {_str(state): _int(count) for state, count in _dict(item["by_state"]).items()}
        at = _float(item["at"])
        samples.append(Sample(at, at, _int(item["total"]), by_state, tuple(groups), _int(item.get("other", 0))))
    return Trend(_float(data["interval"]), _float(data["window"]), keys, samples)


def _read_ended(reader: _Reader, item: dict[str, Any]) -> EndedTask:
    return EndedTask(
        _int(item["id"]),
        _str(item["name"]),
        _str(item["coro"]),
        reader.record(item.get("record")),
        reader.time(item["ended_at"]) or 0.0,
        _str(item["outcome"]),
        reader.canceller(item.get("canceller")),
        _int(item.get("task_id", 0)),
    )


def _read_stall(reader: _Reader, item: dict[str, Any]) -> Stall:
    task_name = item.get("task_name")
    return Stall(
        started_at=_float(item["started_at"]),
        started_monotonic=reader.time(item["started_monotonic"]) or 0.0,
        duration=_float(item["duration"]),
        task_id=_opt_int(item.get("task_id")),
        task_name=None if task_name is None else _str(task_name),
        stack=tuple(reader.stack(item.get("stack", []))),
        samples=_int(item.get("samples", 0)),
        matching_samples=_int(item.get("matching_samples", 0)),
    )


#: Files with lines past this are not seeded (a hostile bundle could ask for a huge list).
_SEEDED_LINES_LIMIT = 200_000


def seed_source_lines(bundle: Bundle) -> None:
    """Put the bundle's source lines where tracebacks (and ``where``) read them,
    in this process: the files may not exist here, or may have changed since.
    For the process that opens a bundle, which runs no code of its files."""
    by_file: dict[str, dict[int, str]] = {}
    for (filename, lineno), source in bundle.sources.items():
        if 0 < lineno <= _SEEDED_LINES_LIMIT:
            by_file.setdefault(filename, {})[lineno] = source
    for filename, lines in by_file.items():
        text = [""] * max(lines)
        for lineno, source in lines.items():
            text[lineno - 1] = source + "\n"
        # mtime None: checkcache() leaves the entry alone (as for a module's loader source).
        linecache.cache[filename] = (sum(map(len, text)), None, text, filename)
