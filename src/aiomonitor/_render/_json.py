"""Query results as JSON-ready dicts: what ``-j`` prints, and what the web API
serves.  Pure: plain values in, plain dicts out, no I/O (but source lines
read through ``linecache``, as tracebacks do)."""

from __future__ import annotations

import itertools
import json
import linecache
import math
import operator
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._gil._passes import joined_gently, release_gently
from .._query._audit import AuditEntry
from .._query._diagnosis import Finding
from .._query._doctor_query import Diagnosis
from .._query._groups import TaskGroup
from .._query._queries import AwaitTree, ClientInfo, MonitorStatus, TaskDetail
from .._query._stalls import Stall
from ..backends import EndedTask, FrameInfo, TaskColumns, TaskSnapshot
from . import _format, _graph

#: Frames of a stack, and links of a creation chain, given at most (the innermost).
MAX_FRAMES = 200


def location(frame: FrameInfo | None) -> dict[str, Any] | None:
    return None if frame is None else _place(frame)


def _place(frame: FrameInfo) -> dict[str, Any]:
    return {"file": frame.filename, "line": frame.lineno, "function": frame.name}


def task(snapshot: TaskSnapshot, now: float | None = None) -> dict[str, Any]:
    """A task as ``ps -j`` prints it; ages count to *now* (``time.monotonic()``)."""
    if now is None:
        now = time.monotonic()
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "state": snapshot.state,
        "coro": snapshot.coro,
        "location": location(snapshot.location),
        "parent_id": snapshot.parent_id,
        "created": None if snapshot.created is None else list(snapshot.created),
        "creator_id": snapshot.creator_id,
        "age": None if snapshot.created_at is None else now - snapshot.created_at,
        "steps": snapshot.steps,
        "busy": snapshot.busy,
        "longest_step": snapshot.longest_step,
    }


def task_text(chunks: Iterable[TaskColumns], now: float | None = None) -> Iterator[str]:
    """``json.dumps(task(t))`` for each task, a line each, a chunk of lines
    at a time: the same text, several times as fast.

    ``ps -j`` at 100k tasks spent 0.2 s building dicts and 0.65 s in
    ``json.dumps``.  Here each field of a chunk is encoded by one C-level
    pass (strings by the JSON module's own C escaper, numbers by their
    ``repr``, which is what ``json.dumps`` writes), each location, shared
    by many tasks, once, and each line is one %-format, joined a few
    hundred lines per C call (see ``joined_gently``).
    """
    if now is None:
        now = time.monotonic()
    places: dict[FrameInfo | None, str] = {None: "null"}
    sites: dict[FrameInfo | None, str] = {None: "null"}
    for chunk in chunks:
        if not chunk.size:
            continue
        for location in set(chunk.location).difference(places):
            places[location] = json.dumps(_place(location))  # type: ignore[arg-type]
        for created in set(chunk.created).difference(sites):
            sites[created] = json.dumps(list(created))  # type: ignore[arg-type]
        created_at = chunk.created_at
        ages = (
            map(operator.sub, itertools.repeat(now), created_at)
            if None not in created_at
            else (None if at is None else now - at for at in created_at)
        )
        fields = zip(
            map(str, chunk.id),
            map(_encode_string, chunk.name),
            map(_encode_string, chunk.state),
            map(_encode_string, chunk.coro),
            map(places.__getitem__, chunk.location),
            _numbers(chunk.parent_id),
            map(sites.__getitem__, chunk.created),
            _numbers(chunk.creator_id),
            _numbers(list(ages)),
            _numbers(chunk.steps),
            _numbers(chunk.busy),
            _numbers(chunk.longest_step),
            strict=True,
        )
        yield joined_gently("\n", map(_TASK_LINE.__mod__, fields)) + "\n"


#: A task's line in ``ps -j``: ``json.dumps(task(t))``'s text, field by field.
_TASK_LINE = (
    '{"id": %s, "name": %s, "state": %s, "coro": %s, "location": %s, "parent_id": %s, "created": %s, '
    '"creator_id": %s, "age": %s, "steps": %s, "busy": %s, "longest_step": %s}'
)


def audit_entry(item: AuditEntry) -> dict[str, Any]:
    """An audit entry as ``/api/v1/audit`` serves it."""
    return {
        "number": item.number,
        "at": item.at,
        "who": item.who,
        "action": item.action,
        "target": item.target,
        "outcome": item.outcome,
    }


def group(item: TaskGroup, now: float) -> dict[str, Any]:
    """A group of alike tasks as ``ps -g -j`` prints it and the web API serves it."""
    return {
        "count": item.count,
        "states": item.states,
        "name": item.name,
        "coro": item.coro,
        "location": location(item.location),
        "oldest_age": None if item.oldest is None else now - item.oldest,
        "newest_age": None if item.newest is None else now - item.newest,
        "examples": item.examples,
    }


def groups_text(groups: Iterable[TaskGroup]) -> str:
    """``ps -g -j``: one JSON object per group, a line each."""
    now = time.monotonic()
    return "".join(json.dumps(group(item, now)) + "\n" for item in groups)


def _numbers(values: list[float | None] | list[int | None]) -> Iterable[str]:
    """As ``json.dumps`` writes each number (or None): C-level when all are
    None, or all are finite numbers."""
    if values.count(None) == len(values):
        return itertools.repeat("null", len(values))
    if None not in values and all(map(math.isfinite, values)):  # type: ignore[arg-type]
        return map(repr, values)
    return map(_number, values)


#: The JSON module's string encoder (C), as ``json.dumps`` uses it by default.
_encode_string: Any = json.encoder.encode_basestring_ascii


def _number(value: float | None) -> str:
    """As ``json.dumps`` writes a number or None."""
    if value is None:
        return "null"
    if value.__class__ is int or math.isfinite(value):
        return repr(value)
    return json.dumps(value)  # NaN, Infinity


def ended(item: EndedTask) -> dict[str, Any]:
    canceller = item.canceller
    record = item.record
    return {
        "id": item.id,
        "task_id": item.task_id,
        "name": item.name,
        "coro": item.coro,
        "outcome": item.outcome,
        "lived": item.lifetime,
        "created": None if record is None or record.created is None else list(record.created),
        "creator_id": None if record is None or record.parent is None else record.parent.task_id,
        "cancelled_by": None if canceller is None else {"task_id": canceller.task_id, "task_name": canceller.task_name},
    }


def await_tree(tree: AwaitTree) -> Iterator[str]:
    """The await graph as one JSON object, in pieces.

    One ``json.dumps`` of a 100k-task graph is a single C call that holds
    the GIL for ~150 ms, stalling the app; item by item, the GIL changes hands.
    """
    names = tree.names
    lines, cycles = _graph.tree_lines(names, tree.edges, tree.creators)
    release_gently(lines)
    yield '{"tasks": ['
    yield from _joined(_tree_tasks(names, tree.coros, tree.locations), raw=True)
    yield '], "edges": ['
    yield from _joined({"waiter": w, "awaited": a, "how": how} for w, a, how in tree.edges if w in names and a in names)
    yield '], "created_by": {'
    yield from _joined((f"{json.dumps(str(child))}: {creator}" for child, creator in tree.creators.items()), raw=True)
    yield f'}}, "cycles": {json.dumps(cycles)}}}\n'


def _tree_tasks(
    names: Mapping[int, str], coros: Mapping[int, str], locations: Mapping[int, FrameInfo | None]
) -> Iterator[str]:
    """``json.dumps({"id": ..., "name": ..., "coro": ..., "location": ...})`` of
    each task, in C-level passes (each location, shared by many, encoded once)."""
    places: dict[FrameInfo | None, str] = {None: "null"}
    ids = iter(names)
    while chunk := list(itertools.islice(ids, 1000)):
        names_text = map(_encode_string, map(names.__getitem__, chunk))
        coros_text = map(_encode_string, map(coros.__getitem__, chunk))
        wheres = list(map(locations.get, chunk))
        for where in set(wheres).difference(places):
            places[where] = json.dumps(_place(where))  # type: ignore[arg-type]
        places_text = map(places.__getitem__, wheres)
        fields = zip(chunk, names_text, coros_text, places_text, strict=True)
        yield from map('{"id": %s, "name": %s, "coro": %s, "location": %s}'.__mod__, fields)


def _joined(items: Iterable[Any], raw: bool = False, batch: int = 1000) -> Iterator[str]:
    """JSON values (or *raw* pre-encoded members) separated by ", ", in batches."""
    first = True
    for chunk in _batched(items, batch):
        text = ", ".join(chunk if raw else map(json.dumps, chunk))
        yield text if first else ", " + text
        first = False


def _batched(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def finding(item: Finding) -> dict[str, Any]:
    return {
        "severity": item.severity,
        "check": item.check,
        "title": item.title,
        "task_ids": list(item.task_ids),
        "evidence": list(item.evidence),
        "why": item.why,
    }


def diagnosis(result: Diagnosis) -> dict[str, Any]:
    return {"tasks": result.tasks, "problems": len(result.findings), "findings": [finding(f) for f in result.findings]}


def frames(stack: Sequence[FrameInfo]) -> list[dict[str, Any]]:
    """Frames with their source lines, innermost last."""
    return [
        {**_place(frame), "source": linecache.getline(frame.filename, frame.lineno).strip()}
        for frame in stack[-MAX_FRAMES:]
    ]


def task_detail(snapshot: TaskSnapshot, detail: TaskDetail) -> dict[str, Any]:
    """A task as ``ps -j`` gives it, with what ``where`` adds: stack, wait,
    canceller and creation chain."""
    chain = detail.record.chain() if detail.record is not None else ()
    canceller = detail.canceller
    return {
        **task(snapshot),
        "stack": frames(detail.stack),
        "wait": None if detail.wait is None else _format.wait_lines(detail.wait, detail.wait_names).splitlines(),
        "canceller": None
        if canceller is None
        else {"task_id": canceller.task_id, "task_name": canceller.task_name, "stack": frames(canceller.stack)},
        "creation_chain": [
            {"task_id": link.task_id, "name": detail.chain_names.get(link.task_id), "created": location(link.created)}
            for link in chain[-MAX_FRAMES:]
        ],
        "earlier_creators": chain[0].depth if chain else 0,
    }


def stall(item: Stall) -> dict[str, Any]:
    return {
        "started_at": item.started_at,
        "duration": item.duration,
        "task_id": item.task_id,
        "task_name": item.task_name,
        "stack": frames(item.stack),
        "samples": item.samples,
        "matching_samples": item.matching_samples,
    }


def status(item: MonitorStatus) -> dict[str, Any]:
    blocked = item.blocked
    return {
        "framework": item.framework,
        "traced": item.traced,
        "timed": item.timed,
        "keeps_history": item.keeps_history,
        "blocked": None
        if blocked is None
        else {
            "for": blocked.blocked_for,
            "task_id": blocked.task_id,
            "task_name": item.blocked_task_name,
            "stack": frames(blocked.stack),
        },
    }


def client(item: ClientInfo) -> dict[str, Any]:
    return {"peer": item.peer, "kind": item.kind, "connected_for": item.connected_for, "running": item.running}
