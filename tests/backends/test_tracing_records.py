"""Creation records on asyncio: made lazily from the task's slots, and the
same whichever way they are read.

The tracer's factory stores a task's site, time and creator's record in
slots and makes the task's own record only when it creates a child; readers
make it from the slots.  These tests hold every reader (one snapshot, the
column snapshot, ``record``, the history) to the same chain, and the
factory's remembered frame depth to the right site when the stack changes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from aiomonitor.backends import Backend, asyncio_backend

_LOOPS = ["asyncio"] + (["uvloop"] if sys.platform != "win32" else [])


def _run(loop_kind: str, main: Any) -> Any:
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(main)
    return asyncio.run(main)


def _line_of(marker: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if line.rstrip().endswith(marker):
                return number
    raise AssertionError(marker)


async def _grandchild(release: asyncio.Event) -> None:
    await release.wait()


async def _child(release: asyncio.Event, started: list[asyncio.Task[Any]]) -> None:
    started.append(asyncio.create_task(_grandchild(release)))  # site: grandchild
    await release.wait()


async def _parent(release: asyncio.Event, started: list[asyncio.Task[Any]]) -> None:
    started.append(asyncio.create_task(_child(release, started)))  # site: child
    await release.wait()


@pytest.mark.parametrize("loop_kind", _LOOPS)
def test_a_chain_of_three_reads_the_same_from_every_reader(loop_kind: str) -> None:
    async def scenario() -> tuple[Backend, list[int]]:
        backend = asyncio_backend(asyncio.get_running_loop(), trace=True, history_size=10)
        backend.attach()
        release = asyncio.Event()
        started: list[asyncio.Task[Any]] = []
        try:
            started.append(asyncio.create_task(_parent(release, started)))  # site: parent
            while len(started) < 3:
                await asyncio.sleep(0)
            ids = [id(task) for task in started]
            parent_id, child_id, grandchild_id = ids
            record = backend.record(grandchild_id)
            assert record is not None
            chain = record.chain()
            assert [link.task_id for link in chain] == ids
            assert [link.depth for link in chain] == [0, 1, 2]
            assert [link.created.lineno for link in chain if link.created is not None] == [
                _line_of("# site: parent"),
                _line_of("# site: child"),
                _line_of("# site: grandchild"),
            ]
            columns = {snap.id: snap for chunk in backend.snapshot_columns() for snap in chunk.snapshots()}
            for task_id, creator in ((parent_id, None), (child_id, parent_id), (grandchild_id, child_id)):
                one = backend.snapshot_one(task_id)
                assert one == columns[task_id]
                assert one.creator_id == creator
                assert one.created_at is not None and one.created is not None
            # A task made outside any task (a loop callback: a shallower
            # stack than the last task's) has its own site, no creator.
            made: list[asyncio.Task[Any]] = []
            asyncio.get_running_loop().call_soon(
                lambda: made.append(asyncio.get_running_loop().create_task(_grandchild(release)))  # site: callback
            )
            while not made:
                await asyncio.sleep(0)
            from_callback = backend.snapshot_one(id(made[0]))
            assert from_callback.created is not None and from_callback.created.lineno == _line_of("# site: callback")
            assert from_callback.creator_id is None
            release.set()
            await asyncio.gather(*started, *made)
            return backend, ids
        finally:
            backend.detach()

    backend, ids = _run(loop_kind, scenario())
    ended = {entry.task_id: entry for entry in backend.history()}
    for task_id, depth in zip(ids, (0, 1, 2), strict=True):
        record = ended[task_id].record
        assert record is not None and record.depth == depth
        assert [link.task_id for link in record.chain()] == ids[: depth + 1]


async def _spawn(release: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(_grandchild(release))  # site: spawn helper


@pytest.mark.parametrize("loop_kind", _LOOPS)
def test_sites_follow_the_stack_as_it_changes_depth(loop_kind: str) -> None:
    """Tasks made in a loop share a frame; the next one made one frame deeper
    (a helper) or shallower gets its own line, not the loop's."""

    async def scenario() -> list[tuple[int | None, int]]:
        backend = asyncio_backend(asyncio.get_running_loop(), trace=True)
        backend.attach()
        release = asyncio.Event()
        made: list[tuple[asyncio.Task[Any], int]] = []
        try:
            for _ in range(3):
                made.append((asyncio.create_task(_grandchild(release)), _line_of("# site: loop")))  # site: loop
            for _ in range(2):
                made.append((await _spawn(release), _line_of("# site: spawn helper")))
            made.append((asyncio.create_task(_grandchild(release)), _line_of("# site: after")))  # site: after
            sites = []
            for task, line in made:
                created = backend.snapshot_one(id(task)).created
                sites.append((None if created is None else created.lineno, line))
            release.set()
            await asyncio.gather(*(task for task, _ in made))
            return sites
        finally:
            backend.detach()

    for found, expected in _run(loop_kind, scenario()):
        assert found == expected
