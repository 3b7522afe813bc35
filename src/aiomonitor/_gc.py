"""Keep the cyclic garbage collector out of the monitor's heavy moments.

A collection runs in whichever thread allocates past the threshold, and a
full one walks every tracked object of the process holding the GIL: at 100k
traced tasks that stops the app's loop for 100-400 ms.  A command that
materialises many objects at once (sorting every task, the await tree, JSON
of every task) pushes the collector over its full-collection threshold from
our thread, so the app pays for our allocations.  Measured with
``benchmarks/run.py --only commands``: those were the only stalls over 20 ms
(the "longest GC" column; see the README for the figures).

So while a command *computes* (never while it waits for a client or for the
app's loop), automatic collection is paused; when the last such computation
ends it is switched back on.  The app's own collection behaviour is untouched
whenever no command is computing; during one it is deferred, not skipped: the
young objects it allocated meanwhile are collected at its next allocation
past the threshold.  An app that has switched the collector off itself is
left alone.

The state is module-level on purpose: the collector is one per process, so
two monitors (or two clients) computing at once must share one count.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
#: How many computations hold the pause; the collector is off while > 0.
_holders = 0
#: Whether the first holder switched the collector off (so the last restores it).
_switched_off = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause automatic garbage collection for the duration (thread-safe, re-entrant).

    Use it only around bounded CPU work: anything that waits (a client's
    socket, the monitored loop) must happen outside it.
    """
    global _holders, _switched_off
    with _lock:
        if _holders == 0:
            _switched_off = gc.isenabled()
            if _switched_off:
                gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _switched_off:
                _switched_off = False
                gc.enable()


def is_paused_by_us() -> bool:
    """Whether a computation holds the pause now (for tests and ``who``)."""
    with _lock:
        return _holders > 0
