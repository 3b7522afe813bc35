"""Alike tasks fold into one line: ``ps -g`` (and ``-j``) and ``pstree``,
over real sockets, and the grouping itself as pure logic."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomonitor._query._groups import EXAMPLES, task_groups
from aiomonitor.backends import FrameInfo, TaskColumns, TaskSnapshot

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread

CROWD = 10_000


@contextlib.asynccontextmanager
async def crowd_under_one_parent(backend_name: str) -> AsyncIterator[None]:
    """A parent ("crowd-parent") waiting for CROWD children parked on one line, and one other task."""
    if backend_name == "trio":
        import trio

        async def trio_member() -> None:
            await trio.sleep_forever()  # the crowd's line

        async def trio_parent(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with trio.open_nursery() as nursery:
                for _ in range(CROWD):
                    nursery.start_soon(trio_member, name="crowd-member")
                task_status.started()

        async with trio.open_nursery() as nursery:
            await nursery.start(trio_parent, name="crowd-parent")
            nursery.start_soon(trio.sleep_forever, name="loner")
            yield
            nursery.cancel_scope.cancel()
        return

    all_parked = asyncio.Event()
    parked = 0

    async def member() -> None:
        nonlocal parked
        parked += 1
        if parked == CROWD:
            all_parked.set()
        await asyncio.sleep(3600)  # the crowd's line

    async def parent() -> None:
        await asyncio.gather(*(asyncio.create_task(member(), name="crowd-member") for _ in range(CROWD)))

    tasks = [asyncio.create_task(parent(), name="crowd-parent"), asyncio.create_task(asyncio.sleep(3600), name="loner")]
    await all_parked.wait()
    try:
        yield
    finally:
        for task in asyncio.all_tasks():
            if task.get_name() in ("crowd-parent", "crowd-member", "loner"):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.anyio
async def test_ps_g_folds_a_crowd_into_one_row(anyio_backend_name: str) -> None:
    async with crowd_under_one_parent(anyio_backend_name):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            grouped = await in_thread(client.command, "ps -g")
            as_json = await in_thread(client.command, "ps -g -j")
            filtered = await in_thread(client.command, "ps -g loner")
            refused = await in_thread(client.command, "ps -g -n 3")
    lines = grouped.splitlines()
    assert len(lines) < 15, grouped
    (crowd,) = [line for line in lines if "crowd-member" in line]
    assert crowd.split()[0] == str(CROWD)
    groups = [json.loads(line) for line in as_json.splitlines()]
    assert groups[0]["count"] == CROWD and groups[0]["name"] == "crowd-member"
    assert len(groups[0]["examples"]) == EXAMPLES
    assert groups[0]["location"]["file"].endswith("test_grouping.py")
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert "crowd-member" not in filtered and "loner" in filtered
    assert refused.strip() == "-g shows every group, largest first: it takes no -s or -n"


@pytest.mark.anyio
async def test_pstree_folds_alike_siblings(anyio_backend_name: str) -> None:
    async with crowd_under_one_parent(anyio_backend_name):
        with open_monitor(anyio_backend_name) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            folded = await in_thread(client.command, "pstree")
            expanded = await in_thread(client.command, "pstree --expand")
    lines = folded.splitlines()
    assert len(lines) < 50, folded
    (crowd,) = [line for line in lines if f"{CROWD} \N{MULTIPLICATION SIGN} crowd-member" in line]
    assert "test_grouping.py:" in crowd and "e.g. " in crowd
    parent = [index for index, line in enumerate(lines) if "crowd-parent (" in line]
    assert parent and lines.index(crowd) == parent[0] + 1, folded  # under its parent
    assert expanded.count("crowd-member") == CROWD


_frames = st.sampled_from([FrameInfo("a.py", 1, "f"), FrameInfo("a.py", 2, "f"), FrameInfo("b.py", 1, "g"), None])
_tasks = st.lists(
    st.tuples(st.sampled_from(["f", "g"]), _frames, st.sampled_from(["pending", "done"]), st.sampled_from(["x", "y"])),
    max_size=60,
)


@given(tasks=_tasks, chunk=st.integers(1, 7))
def test_groups_partition_the_tasks(tasks: list[tuple[str, FrameInfo | None, str, str]], chunk: int) -> None:
    snapshots = [
        TaskSnapshot(index, name, state, coro, frame, created_at=float(index))
        for index, (coro, frame, state, name) in enumerate(tasks)
    ]
    chunks = [TaskColumns.of(snapshots[start : start + chunk]) for start in range(0, len(snapshots), chunk)]
    groups = task_groups(chunks)
    assert sum(group.count for group in groups) == len(tasks)
    assert len({(group.coro, group.location) for group in groups}) == len(groups)
    assert [group.count for group in groups] == sorted((group.count for group in groups), reverse=True)
    for group in groups:
        members = [s for s in snapshots if (s.coro, s.location) == (group.coro, group.location)]
        assert group.count == len(members)
        assert group.examples == [s.id for s in members][:EXAMPLES]
        assert group.states == {state: [s.state for s in members].count(state) for state in group.states}
        assert group.oldest == members[0].created_at and group.newest == members[-1].created_at
        names = {s.name for s in members}
        assert group.name == (names.pop() if len(names) == 1 else None)
