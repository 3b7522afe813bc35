"""Keep the monitor's heavy moments off the app's back: the collector and the GIL.

Two process-wide mechanisms made a heavy command (a snapshot of 100k tasks)
stall the app's loop far beyond what the command's own work explains,
measured with ``benchmarks/run.py --only commands`` (figures in the README):

* The cyclic garbage collector runs in whichever thread allocates past its
  threshold, and a full collection walks every tracked object of the process
  holding the GIL (100-400 ms at 100k traced tasks).  A command that holds
  many objects at once (a sort, the await tree) pushed it over its
  full-collection threshold from our thread: the app paid for our
  allocations.  While a command computes, automatic collection is paused.
* CPython hands the GIL to a waiting thread only when the holder blocks or
  after the switch interval (5 ms by default) has passed, and with our server
  thread also waiting the app's loop could lose several turns in a row:
  20-35 ms stalls.  While a command computes, the switch interval is at most
  1 ms, so the loop gets the GIL back within about a millisecond.

Both are paused only while a command *computes* (never while it waits for a
client or for the app's loop, which a client could stretch), and restored
when the last computation ends.  The app's behaviour is untouched whenever
no command computes; during one, collections are deferred, not skipped (the
young objects the app allocated meanwhile are collected at its next
allocation past the threshold).  A collector the app had switched off is
left off, and a switch interval the app changed meanwhile is left as the app
set it.

The state is module-level on purpose: the collector and the GIL are one per
process, so two monitors (or two clients) computing at once share one count.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
from collections.abc import Iterator

#: The switch interval while a command computes (see the module docstring).
COMPUTING_SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
#: How many computations are running; the settings are changed while > 0.
_holders = 0
#: Whether the first holder switched the collector off (so the last restores it).
_collector_was_on = False
#: The app's switch interval, while ours is in force (None: we did not change it).
_app_switch_interval: float | None = None


@contextlib.contextmanager
def heavy_section() -> Iterator[None]:
    """Pause automatic garbage collection and shorten the GIL switch interval
    for the duration (thread-safe, re-entrant).

    Use it only around bounded CPU work: anything that waits (a client's
    socket, the monitored loop) must happen outside it.
    """
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _holders, _collector_was_on, _app_switch_interval
    with _lock:
        if _holders == 0:
            _collector_was_on = gc.isenabled()
            if _collector_was_on:
                gc.disable()
            interval = sys.getswitchinterval()
            if interval > COMPUTING_SWITCH_INTERVAL:
                _app_switch_interval = interval
                sys.setswitchinterval(COMPUTING_SWITCH_INTERVAL)
        _holders += 1


def _leave() -> None:
    global _holders, _collector_was_on, _app_switch_interval
    with _lock:
        _holders -= 1
        if _holders:
            return
        if _collector_was_on:
            _collector_was_on = False
            gc.enable()
        # Python keeps the interval in microseconds: compare to that precision.
        if _app_switch_interval is not None and abs(sys.getswitchinterval() - COMPUTING_SWITCH_INTERVAL) < 1e-6:
            sys.setswitchinterval(_app_switch_interval)
        _app_switch_interval = None


def is_active() -> bool:
    """Whether a computation is running now (for tests)."""
    with _lock:
        return _holders > 0
