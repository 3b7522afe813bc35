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
  20-35 ms stalls.  While a command computes or writes a big output, the
  switch interval is at most 1 ms, so the loop gets the GIL back within
  about a millisecond.

The collector is paused only while a command *computes* (never while it
waits for a client or for the app's loop, which a client could stretch);
the switch interval also while it writes a big output.  Both are restored
when the last section ends.  The app's behaviour is untouched whenever
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

#: The switch interval while a command computes or writes a big output.
COMPUTING_SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
#: How many computations pause the collector; it is off while > 0.
_collector_holders = 0
#: Whether the first holder switched the collector off (so the last restores it).
_collector_was_on = False
#: How many sections want frequent GIL switching; in force while > 0.
_switching_holders = 0
#: The app's switch interval, while ours is in force (None: we did not change it).
_app_switch_interval: float | None = None


@contextlib.contextmanager
def heavy_section() -> Iterator[None]:
    """Pause automatic garbage collection and shorten the GIL switch interval
    for the duration (thread-safe, re-entrant).

    Use it only around bounded CPU work: anything that waits (a client's
    socket, the monitored loop) must happen outside it.
    """
    with _collector_paused(), output_section():
        yield


@contextlib.contextmanager
def output_section() -> Iterator[None]:
    """Shorten the GIL switch interval only: for writing a big output.

    Fifty clients writing their megabyte of ``ps`` at once kept the app's
    loop waiting 20-30 ms for the GIL at 5 ms turns (measured).  Unlike the
    collector pause this may last as long as a slow client takes: a short
    switch interval costs nothing while threads do not compete.
    """
    global _switching_holders, _app_switch_interval
    with _lock:
        if _switching_holders == 0:
            interval = sys.getswitchinterval()
            if interval > COMPUTING_SWITCH_INTERVAL:
                _app_switch_interval = interval
                sys.setswitchinterval(COMPUTING_SWITCH_INTERVAL)
        _switching_holders += 1
    try:
        yield
    finally:
        with _lock:
            _switching_holders -= 1
            # Python keeps the interval in microseconds: compare to that precision.
            ours = abs(sys.getswitchinterval() - COMPUTING_SWITCH_INTERVAL) < 1e-6
            if _switching_holders == 0 and _app_switch_interval is not None and ours:
                sys.setswitchinterval(_app_switch_interval)
            if _switching_holders == 0:
                _app_switch_interval = None


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    global _collector_holders, _collector_was_on
    with _lock:
        if _collector_holders == 0:
            _collector_was_on = gc.isenabled()
            if _collector_was_on:
                gc.disable()
        _collector_holders += 1
    try:
        yield
    finally:
        with _lock:
            _collector_holders -= 1
            if _collector_holders == 0 and _collector_was_on:
                _collector_was_on = False
                gc.enable()


#: Worker threads copying output at once (see output_turn).
OUTPUT_TURNS = 2
_output_turns = threading.BoundedSemaphore(OUTPUT_TURNS)


@contextlib.contextmanager
def output_turn() -> Iterator[None]:
    """Take one of a few turns to copy output into a session's buffer.

    Fifty clients sharing one ``ps`` woke fifty worker threads at once, all
    wanting the GIL to copy their answer; the GIL goes to any waiting thread,
    not in turn, so the app's loop waited behind many of them (23-47 ms worst
    stall measured with ``benchmarks/run.py --only concurrency``).  Threads
    waiting for a turn wait on a semaphore, without the GIL.  Take a turn only
    around copying that cannot block: never while waiting for a client.
    """
    with _output_turns:
        yield


def is_active() -> bool:
    """Whether any section is open now (for tests)."""
    with _lock:
        return _collector_holders > 0 or _switching_holders > 0
