"""A thread of the monitor's own that watches until stopped: the stall
recorder's, the flight recorder's, the automatic dumps'.

Daemon (a monitor the app never closes must not keep the process alive),
named ``aiomonitor-...`` (so ``run`` tells the monitor's loops from the
app's), stopped by an event it waits on (so ``stop`` wakes it at once), and
forgotten, not joined, in a forked child, where it did not come along.
"""

from __future__ import annotations

import threading


class Watcher:
    """Runs ``_watch`` in a thread named *thread_name* from ``start`` until ``stop``."""

    def __init__(self, thread_name: str) -> None:
        self._thread_name = thread_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Tell the thread to end, and wait up to *timeout* for it (not from itself)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def forget_thread_in_child(self) -> None:
        """After fork(), in the child: the thread did not come along."""
        self._stop.set()
        self._thread = None

    def _watch(self) -> None:
        raise NotImplementedError
