"""The monitor's worker threads: at most N at work at once, abandoned ones included.

Commands run in worker threads of the server's event loop.  A client that
vanishes mid-command abandons its thread (Python can't stop a thread), and
anyio's own limiter frees the slot at once while the thread runs on: under
churn the pool grew past its size.  Here a slot is held until the work
itself ends, so threads at work never exceed the size, however many clients
come and go.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


class WorkerPool:
    """Runs blocking calls in worker threads (server thread only, except where said)."""

    def __init__(self, size: int, call_in_server: Callable[[Callable[[], None]], None]) -> None:
        self._slots = anyio.CapacityLimiter(size)
        # Slots are counted above; anyio's default limiter (40) must not cap us again.
        self._threads = anyio.CapacityLimiter(math.inf)
        self._call_in_server = call_in_server

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker thread; if cancelled, the thread is abandoned
        (its slot stays taken until it returns) or, if not started yet, never runs."""
        token = object()
        await self._slots.acquire_on_behalf_of(token)
        claim = threading.Lock()
        started = withdrawn = False

        def release() -> None:  # in the server thread
            self._slots.release_on_behalf_of(token)

        def work() -> T:
            nonlocal started
            with claim:
                if withdrawn:
                    raise anyio.get_cancelled_exc_class()()  # (nobody waits for this result)
                started = True
            threading.current_thread().name = "aiomonitor-worker"  # for stack dumps (py-spy, faulthandler)
            try:
                return func(*args)
            finally:
                self._call_in_server(release)

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=self._threads)
        except BaseException:
            with claim:
                if not started:
                    withdrawn = True
            if withdrawn:
                release()
            raise
