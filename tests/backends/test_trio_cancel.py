"""trio's ``cancel`` without a cancel scope per task: one task ends, its siblings
run on, whenever it was spawned; a shielded one is refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

import aiomonitor

from ..support.helpers import Client, in_thread

pytestmark = pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")])


async def test_one_task_ends_its_siblings_and_children_as_trio_would(anyio_backend_name: str) -> None:
    import trio

    ended: dict[str, str] = {}

    async def parked(name: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            ended[name] = "cancelled"
            raise

    async def parent(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as inner:
            await inner.start(parked, "its-child")
            task_status.started()
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        # Spawned before the monitor starts: no wrapper of any kind around them.
        await nursery.start(parked, "target", name="target")
        await nursery.start(parked, "sibling", name="sibling")
        await nursery.start(parent, name="the-parent")
        with aiomonitor.monitor_trio(port=0, console_enabled=False) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            target = await in_thread(client.command, "cancel target")
            parent_answer = await in_thread(client.command, "cancel the-parent")
            listing = await in_thread(client.command, "ps")
        nursery.cancel_scope.cancel()
    assert target.startswith("Cancelled task "), target
    assert parent_answer.startswith("Cancelled task "), parent_answer
    assert "the-parent" not in listing and "target" not in listing and "sibling" in listing, "the sibling runs on"
    assert ended == {"target": "cancelled", "its-child": "cancelled", "sibling": "cancelled"}  # the last at the end


async def test_a_shielded_task_is_refused_in_one_line_and_runs_on(anyio_backend_name: str) -> None:
    import trio

    release = trio.Event()

    async def shielded(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope(shield=True):
            task_status.started()
            await release.wait()  # nothing but this ends it: the shield keeps every cancellation out

    async with trio.open_nursery() as nursery:
        await nursery.start(shielded, name="shielded-one")
        with aiomonitor.monitor_trio(port=0, console_enabled=False) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            answer = await in_thread(client.command, "cancel shielded-one")
            still = await in_thread(client.command, "ps shielded")
        assert answer.endswith("it waits inside a shielded cancel scope, where trio delivers no cancellation\n")
        assert len(answer.splitlines()) == 1 and "shielded-one" in still
        release.set()


async def test_per_task_scopes_still_cancel_with_public_api_only(anyio_backend_name: str) -> None:
    import trio

    cancelled: list[str] = []

    async def parked() -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append("scoped")
            raise

    with aiomonitor.monitor_trio(port=0, console_enabled=False, cancellable_tasks=True) as monitor:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parked, name="scoped")
            await trio.sleep(0.01)
            with Client(monitor.port) as client:
                await in_thread(client.start)
                answer = await in_thread(client.command, "cancel scoped")
            assert monitor._backend._instrument is not None  # type: ignore[attr-defined]
    assert answer.startswith("Cancelled task ") and cancelled == ["scoped"]
