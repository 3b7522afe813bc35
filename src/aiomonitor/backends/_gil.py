"""Helpers that keep the monitor's long loops from holding the GIL.

A monitor thread walking 100k tasks competes with the app's loop thread for
the GIL; these give it back often enough that the app keeps its pace.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Work items between voluntary GIL releases in the monitor's long loops.
GIL_YIELD_EVERY = 256


def yielding(items: Iterable[T], every: int = GIL_YIELD_EVERY) -> Iterator[T]:
    """Iterate, briefly releasing the GIL every *every* items.

    A CPU-bound monitor thread otherwise keeps the GIL for the whole switch
    interval (5 ms) each time, and the app's loop waits that long at every
    turn; ``time.sleep(0)`` hands the GIL to a waiting thread at once.
    """
    for index, item in enumerate(items):
        if index % every == every - 1:
            time.sleep(0)
        yield item


def sorted_by_id(items: Iterable[T]) -> Iterator[T]:
    """``sorted(items, key=id)`` without one long GIL hold.

    Sorting 100k objects is a single ~20 ms C call, during which the app's
    loop cannot run; sorted chunks merged by a Python generator give the GIL
    back between elements.
    """
    chunk_size = 8192
    pending = list(items)
    chunks = [sorted(pending[i : i + chunk_size], key=id) for i in range(0, len(pending), chunk_size)]
    return heapq.merge(*chunks, key=id)
