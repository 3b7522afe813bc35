"""An event whose waiters wake one after another, not all at once.

``threading.Event.set`` wakes every waiter together.  Fifty clients typing
``ps`` at once made fifty worker threads wait on one event twice (the loop's
answer to a shared ping, then the shared computation's result), and each
``set`` made fifty threads want the GIL at the same moment.  They passed it
among themselves while the app's loop waited behind them: CPython asks the
holder to hand the GIL over only when a waiter's wait ends with no hand-over
meanwhile, and fifty threads taking turns always made one (10-25 ms stalls
measured with ``perf sched``; README, "Benchmarks").  The first of those
``set`` calls ran in the app's own thread, which also paid for fifty wakes.

Here ``set`` wakes one waiter, and each waiter wakes the next as it goes on,
so a few threads at most want the GIL at a time, and whoever sets it pays
for one wake.
"""

from __future__ import annotations

import threading


class Relay:
    """A one-shot event (``set``, ``is_set``, ``wait``) whose waiters wake in turn."""

    __slots__ = ("_baton", "_set")

    def __init__(self) -> None:
        # One permit once set: each waiter takes it and hands it back.
        self._baton = threading.Semaphore(0)
        self._set = False

    def set(self) -> None:
        """Mark it set and wake one waiter (any thread; call once)."""
        self._set = True
        self._baton.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (or *timeout* seconds); whether it is set."""
        if timeout is not None and timeout < 0:  # as Event.wait takes it (a lock's acquire would raise)
            timeout = 0
        if self._baton.acquire(timeout=timeout):
            self._baton.release()  # the next waiter's turn
            return True
        return self._set
