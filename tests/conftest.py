"""Fixtures: one test body runs on asyncio, asyncio+uvloop and trio.

The test's own event loop is the monitored app; the monitor is started on it
with ephemeral ports, and tests talk to it over real sockets from worker
threads (``helpers.in_thread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import aiomonitor

_HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None

ALL_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(not _HAVE_UVLOOP, reason="uvloop is not installed"),
    ),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(autouse=True, scope="session")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's monitors (and the apps it starts) register in a directory of
    its own, never among the user's real ones, which ``aiomonitor ls`` lists."""
    saved = os.environ.get("AIOMONITOR_RUNTIME_DIR")
    os.environ["AIOMONITOR_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("registry"))
    yield
    if saved is None:
        del os.environ["AIOMONITOR_RUNTIME_DIR"]
    else:
        os.environ["AIOMONITOR_RUNTIME_DIR"] = saved


@pytest.fixture(params=ALL_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@contextlib.contextmanager
def open_monitor(backend_name: str, **options: Any) -> Iterator[aiomonitor.Monitor]:
    """Start a monitor on the running loop of *backend_name* (ephemeral ports)."""
    options.setdefault("port", 0)
    options.setdefault("console_port", 0)
    if backend_name == "trio":
        with aiomonitor.monitor_trio(**options) as monitor:
            yield monitor
    else:
        with aiomonitor.start_monitor(asyncio.get_running_loop(), **options) as monitor:
            yield monitor


@pytest.fixture
async def monitor(anyio_backend_name: str) -> AsyncIterator[aiomonitor.Monitor]:
    with open_monitor(anyio_backend_name) as started:
        yield started
