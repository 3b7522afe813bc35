"""Tracing switched at runtime (``trace on|off``, ``POST /api/v1/trace``) and the
monitor's own bill (``cost``), on asyncio, uvloop and trio, in a real session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..conftest import open_monitor
from ..support.helpers import Client, in_thread
from ..support.web_helpers import request


async def parked() -> None:
    await anyio.sleep(3600)


async def quick() -> int:
    return 7


@asynccontextmanager
async def spawner(framework: str) -> AsyncIterator[Callable[[Callable[[], Any], str], Any]]:
    """A way to start named tasks the framework's own way (asyncio.create_task, a trio nursery)."""
    if framework == "trio":
        import trio

        async with trio.open_nursery() as nursery:

            def start(fn: Callable[[], Any], name: str) -> None:
                nursery.start_soon(fn, name=name)

            yield start
            nursery.cancel_scope.cancel()
    else:
        tasks: list[asyncio.Task[Any]] = []

        def start(fn: Callable[[], Any], name: str) -> None:
            tasks.append(asyncio.create_task(fn(), name=name))

        yield start
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_trace_on_traces_the_tasks_created_from_then_on_and_off_stops(anyio_backend_name: str) -> None:
    factory_calls: list[str] = []
    if anyio_backend_name != "trio":  # the app's own factory, which must keep running throughout
        loop = asyncio.get_running_loop()

        def app_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            factory_calls.append(getattr(coro, "__name__", "?"))
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(app_factory)
    try:
        with open_monitor(anyio_backend_name, console_enabled=False) as monitor, Client(monitor.port) as client:
            await in_thread(client.start)
            assert (await in_thread(client.command, "trace")).startswith("Tracing is off")
            async with spawner(anyio_backend_name) as start:
                start(parked, "before")
                await anyio.wait_all_tasks_blocked()
                switched = await in_thread(client.command, "trace on --history 10")
                start(parked, "after")
                start(quick, "finished-after")
                await anyio.wait_all_tasks_blocked()
                before = await in_thread(client.command, "where before")
                after = await in_thread(client.command, "where after")
                ended = await in_thread(client.command, "ended")
                off = await in_thread(client.command, "trace off")
                start(parked, "later")
                await anyio.wait_all_tasks_blocked()
                later = await in_thread(client.command, "where later")
                still = await in_thread(client.command, "where after")
                bad = await in_thread(client.command, "trace sideways")
    finally:
        if anyio_backend_name != "trio":
            asyncio.get_running_loop().set_task_factory(None)
    assert switched.startswith("Tracing is on since ") and "a history of the last 10 ended tasks" in switched
    assert "Creation chain" not in before and "created before tracing began, or while it was off" in before
    assert "Creation chain (oldest first):" in after and "test_runtime_tracing.py" in after
    assert "finished-after" in ended and "returned 7" in ended
    assert off.startswith("Tracing is off")
    assert "Creation chain" not in later and "(it is off now: trace on records" in later
    assert "Creation chain (oldest first):" in still, "what was recorded stays"
    assert bad == "trace takes on or off (and with on: --history N, --timing)\n"
    if anyio_backend_name != "trio":
        assert factory_calls.count("parked") == 3 and factory_calls.count("quick") == 1, factory_calls


async def test_cost_measures_what_tracing_holds_and_it_moves(anyio_backend_name: str) -> None:
    with open_monitor(anyio_backend_name, console_enabled=False) as monitor, Client(monitor.port) as client:
        await in_thread(client.start)
        idle = await in_thread(client.command, "cost")
        await in_thread(client.command, "trace on --timing")
        async with spawner(anyio_backend_name) as start:
            for number in range(10_000):
                start(parked, f"crowd-{number}")
            await anyio.wait_all_tasks_blocked()
            await in_thread(client.command, "ps -j")
            busy = await in_thread(client.command, "cost")
    assert "Held by tracing: nothing" in idle and "Tracing: off" in idle
    assert "Tracing: on since" in busy and "step timing" in busy
    line = next(row for row in busy.splitlines() if row.strip().startswith("Held by tracing"))
    per_task = float(line.split("Held by tracing: ")[1].split(" bytes")[0])
    traced = int(line.split(" over ")[1].split(" live")[0].replace(",", ""))
    assert traced >= 10_000 and 16 <= per_task <= 2000, line
    assert ("Worst loop stall a command caused in the last hour: " in busy and "(ps" in busy) or "none measured" in busy
    assert "CPU of its threads:" in busy and "flight recorder" in busy


async def test_the_web_api_switches_tracing_for_whoever_may_change_things(anyio_backend_name: str) -> None:
    options = {"web_port": 0, "web_control_token": "the-control-token", "console_enabled": False}
    with open_monitor(anyio_backend_name, **options) as monitor:
        assert monitor.web_url is not None
        base, token = monitor.web_url.split("/?token=")
        reader = {"Authorization": f"Bearer {token}", "Origin": base}
        control = {"Authorization": "Bearer the-control-token", "Origin": base}
        refused = await in_thread(request, "POST", f"{base}/api/v1/trace?on=1", reader)
        switched = await in_thread(request, "POST", f"{base}/api/v1/trace?on=1&history=5&timing=1", control)
        bad = await in_thread(request, "POST", f"{base}/api/v1/trace?on=maybe", control)
        state = await in_thread(request, "GET", f"{base}/api/v1/trace", reader)
        status = await in_thread(request, "GET", f"{base}/api/v1/status", reader)
    assert refused[0] == 403
    assert switched[0] == 200 and json.loads(switched[2])["tracing"] is True
    assert json.loads(switched[2])["history"] == 5 and json.loads(switched[2])["timing"] is True
    assert bad[0] == 400 and b"on must be 1 or 0" in bad[2]
    assert json.loads(state[2])["tracing"] is True
    cost = json.loads(status[2])["cost"]
    assert cost["tracing"] is True and "cpu_seconds_last_minute" in cost
