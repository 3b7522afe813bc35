"""Helpers that keep the monitor's long loops from holding the GIL.

A monitor thread walking 100k tasks competes with the app's loop thread for
the GIL; these give it back often enough that the app keeps its pace.
"""

from __future__ import annotations

import bisect
import collections
import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Work items between voluntary GIL releases in the monitor's long loops.
GIL_YIELD_EVERY = 256
#: Seconds of work between two hand-overs of the GIL (see GilTurns).
HAND_OVER_EVERY = 0.001


class GilTurns:
    """Offers of the GIL to a waiting thread, taken at most every
    ``HAND_OVER_EVERY`` seconds.

    ``time.sleep(0)`` hands the GIL to a waiting thread (the app's loop) at
    once, but is not free: from Python 3.11 it is a ``clock_nanosleep``,
    which Linux's timer slack stretches to ~60 µs (measured here; 3.10's
    ``select`` took ~1.5 µs).  A 100k-task ``pstree`` offered ~540 times,
    ~30 ms of sleeping; ``ps -n 20 -s age`` ~440 times in 0.2 s.  Offered at
    most every millisecond, the app's loop waits at most about as long as
    a heavy section's 1 ms switch interval (``_heavy``) makes it wait anyway.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def offer(self) -> None:
        """Hand the GIL over if a turn is due."""
        if time.perf_counter() - self._last >= HAND_OVER_EVERY:
            time.sleep(0)
            self._last = time.perf_counter()


def yielding(items: Iterable[T], every: int = GIL_YIELD_EVERY) -> Iterator[T]:
    """Iterate, offering the GIL (see :class:`GilTurns`) every *every* items.

    A CPU-bound monitor thread otherwise keeps the GIL for the whole switch
    interval (5 ms) each time, and the app's loop waits that long at every
    turn.
    """
    turns = GilTurns()
    for index, item in enumerate(items):
        if index % every == every - 1:
            turns.offer()
        yield item


#: Items per C-level pass in count_gently: 100k in one pass held the GIL ~25 ms.
COUNT_CHUNK = 4096


def count_gently(
    items: list[Any], key: Callable[[Any], Any], fallback: Callable[[Any], Any] | None = None
) -> dict[Any, int]:
    """``Counter(map(key, items))`` in C-level passes of ``COUNT_CHUNK``,
    handing the GIL over between them.

    A C *key* (``operator.attrgetter``) keeps each pass in C; where it raises
    for an item of a chunk, that chunk is counted again with *fallback*.
    """
    turns = GilTurns()
    counter: collections.Counter[Any] = collections.Counter()
    for start in range(0, len(items), COUNT_CHUNK):
        chunk = items[start : start + COUNT_CHUNK]
        try:
            counter.update(collections.Counter(map(key, chunk)))
        except Exception:
            if fallback is None:
                raise
            counter.update(map(fallback, chunk))
        turns.offer()
    return dict(counter)


#: Items sorted by one C call; more are sorted in chunks (see sorted_gently).
SORT_CHUNK = 2048


def sorted_gently(items: Iterable[T], key: Callable[[T], Any], limit: int | None = None) -> Iterator[T]:
    """``sorted(items, key=key)[:limit]`` without one long GIL hold.

    Sorting 100k items is a single C call of 15-30 ms once the keys are
    computed, during which the app's loop cannot run.  Sorted chunks merged
    by a Python generator give the GIL back between elements; with a
    *limit*, :func:`smallest_gently` keeps at most a chunk and *limit* items
    alive, so a "top 20" of 100k tasks never holds the other 99,980.
    Stable, like ``sorted``.
    """
    if limit is not None:
        return iter(smallest_gently(items, limit, key))
    pending = list(items)
    if len(pending) <= SORT_CHUNK:
        return iter(sorted(pending, key=key))
    chunks = [sorted(pending[i : i + SORT_CHUNK], key=key) for i in yielding(range(0, len(pending), SORT_CHUNK), 1)]
    del pending
    return heapq.merge(*map(_draining, chunks), key=key)


def _draining(chunk: list[T]) -> Iterator[T]:
    """Yield a list's items, dropping each from the list as it goes, so they
    are freed one by one as the consumer drops them, not in one C-level
    cascade when the whole list dies (100k snapshots: ~15 ms, GIL held)."""
    chunk.reverse()
    while chunk:
        yield chunk.pop()


def tasks_with_ids(tasks: Iterable[T], ids: set[int]) -> list[T]:
    """The tasks whose ``id()`` is in *ids*, found by C-level passes over
    ``COUNT_CHUNK`` at a time: looking up a few tasks among 100k by a
    Python loop took ~30-60 ms of the GIL in 5 ms turns."""
    turns = GilTurns()
    found: list[T] = []
    iterator = iter(tasks)
    while len(found) < len(ids) and (chunk := list(itertools.islice(iterator, COUNT_CHUNK))):
        found.extend(itertools.compress(chunk, map(ids.__contains__, map(id, chunk))))
        turns.offer()
    return found


def release_gently(*containers: list[Any] | dict[Any, Any] | set[Any]) -> None:
    """Empty big containers a piece at a time, handing the GIL back between pieces.

    Freeing a container of 100k objects is one C-level cascade of
    deallocations (~15 ms at 100k snapshots) during which the app's loop
    cannot run.  Call it on what a command built, before it goes out of scope.
    """
    # A piece at a time in C (a slice deleted; ``popitem``/``pop`` called by
    # an iterator): a Python call per item made releasing a 100k-task tree a
    # tenth of ``pstree``.  Sets were emptied by removing their first keys,
    # and each piece scanned again the emptied slots before them: a piece
    # of a 100k set took up to ~4.5 ms; ``set.pop`` goes on from where it
    # stopped, and ``dict.popitem`` takes the last entry.
    turns = GilTurns()
    for container in containers:
        while container:
            if isinstance(container, list):
                del container[-RELEASE_PIECE:]
            else:
                take = container.popitem if isinstance(container, dict) else container.pop
                piece = itertools.islice(iter(take, _NEVER_TAKEN), min(RELEASE_PIECE, len(container)))
                collections.deque(piece, maxlen=0)
            turns.offer()


#: A sentinel no container holds: ``iter(take, _NEVER_TAKEN)`` never stops early.
_NEVER_TAKEN = object()


#: Items freed per piece by release_gently (~0.1-0.5 ms of deallocation).
RELEASE_PIECE = 2048


def smallest_gently(items: Iterable[T], count: int, key: Callable[[T], Any] | None = None) -> list[T]:
    """``sorted(items, key=key)[:count]``, stable, from C sorts of
    ``SORT_CHUNK`` items at a time, each cut to *count*, handing the GIL
    over between them.

    ``heapq.nsmallest`` is a Python loop per item: the first 100 of 100k
    trio tasks by id took it ~78 ms, these C sorts ~40 ms.
    """
    turns = GilTurns()
    iterator: Iterator[Any] = iter(items)  # (Any: sorted() wants comparable items when no key is given)
    best: list[Any] = []
    while chunk := list(itertools.islice(iterator, SORT_CHUNK)):
        best.extend(sorted(chunk, key=key)[:count])
        if len(best) > SORT_CHUNK:
            best = sorted(best, key=key)[:count]
        turns.offer()
    return sorted(best, key=key)[:count]


def sorted_by_id(items: Iterable[T]) -> list[T]:
    """``sorted(items, key=id)``, gently: C sorts of ``SORT_CHUNK`` items,
    then merged a range of ids at a time (a sample sort).

    Measured at 100k tasks: one sort holds the GIL 40-49 ms; chunks merged
    by a Python generator took 98-102 ms in all, and pairwise merges
    (:func:`sorted_in_runs`) 80-120 ms, since each of their six levels
    copies every item and calls ``id`` on it again.  Here each item is
    copied and sorted once more: splitters sampled from the sorted runs cut
    the ids into ranges of about ``SORT_CHUNK`` items, and each range is
    gathered from every run by bisection, then sorted by one short C call.
    This takes 36-41 ms.  Ids are unique among live objects, so no range
    can grow beyond about two ``SORT_CHUNK``s (the same object twice shares
    its id, and comes out twice, as ``sorted`` gives it).
    """
    turns = GilTurns()
    pending = list(items)
    if len(pending) <= SORT_CHUNK:
        return sorted(pending, key=id)
    runs = [sorted(chunk, key=id) for chunk in pieces(pending, SORT_CHUNK)]
    del pending
    # Every stride-th id of each run: between two splitters (every
    # per_range-th sampled id) lie at most per_range + len(runs) sampled
    # gaps, each of at most stride items of one run.
    stride = max(1, SORT_CHUNK // len(runs))
    per_range = max(1, SORT_CHUNK // stride)
    sampled = sorted_in_runs([id(item) for run in runs for item in run[stride - 1 :: stride]], None)
    splitters = sampled[per_range - 1 :: per_range]
    ordered: list[T] = []
    starts = [0] * len(runs)
    for bound in itertools.chain(splitters, [None]):
        gathered: list[T] = []
        for index, run in enumerate(runs):
            end = len(run) if bound is None else bisect.bisect_left(run, bound, starts[index], key=id)
            gathered += run[starts[index] : end]
            starts[index] = end
        ordered += sorted(gathered, key=id)
        turns.offer()
    return ordered


def sorted_in_runs(items: Iterable[T], key: Callable[[T], Any] | None) -> list[T]:
    """``sorted(items, key=key)``, stable, from C sorts of ``SORT_CHUNK``,
    then pairwise C merges, the GIL handed over between them.

    Timsort merges two sorted runs in linear time, so each merge is one
    short C call.  Keys are computed again at every merge level: give a C
    *key* (``id``, an ``itemgetter``) or None (items that compare), else use
    :func:`sorted_gently`.
    """
    pending: list[Any] = list(items)  # (Any: sorted() wants comparable items when no key is given)
    if len(pending) <= SORT_CHUNK:
        return sorted(pending, key=key)
    runs = [sorted(chunk, key=key) for chunk in pieces(pending, SORT_CHUNK)]
    del pending
    while len(runs) > 1:
        merged = [_merged(runs[i], runs[i + 1], key) for i in range(0, len(runs) - 1, 2)]
        if len(runs) % 2:
            merged.append(runs[-1])
        runs = merged
    return runs[0]


def _merged(first: list[Any], second: list[Any], key: Callable[[Any], Any] | None) -> list[Any]:
    """Two sorted lists merged, stably (*first*'s items before *second*'s
    equal ones), by C sorts of at most two SORT_CHUNKs at a time.

    Merging two runs of 50k in one C call held the GIL 25-30 ms on a slow
    machine; here bisection finds, for a piece of one list, the part of the
    other that goes with it.
    """
    turns = GilTurns()
    key_of: Callable[[Any], Any] = key if key is not None else _itself
    out: list[Any] = []
    i = j = 0
    while i < len(first) and j < len(second):
        first_end = min(i + SORT_CHUNK, len(first))
        # Second's items strictly below the piece's last key come with it;
        # equal ones after every equal item of first.
        second_end = bisect.bisect_left(second, key_of(first[first_end - 1]), j, key=key)
        if second_end - j > SORT_CHUNK:  # then a piece of second, and first's items up to its last key
            second_end = j + SORT_CHUNK
            first_end = bisect.bisect_right(first, key_of(second[second_end - 1]), i, key=key)
        out.extend(sorted(first[i:first_end] + second[j:second_end], key=key))
        i, j = first_end, second_end
        turns.offer()
    for rest in (first[i:], second[j:]):
        out.extend(rest)
    return out


def _itself(item: T) -> T:
    return item


#: Strings made and joined per C pass by joined_gently.
JOIN_PASS = 256


def joined_gently(separator: str, strings: Iterable[str]) -> str:
    """``separator.join(strings)``, where *strings* are made lazily as they
    are joined (a ``map`` of a %-format over columns), ``JOIN_PASS`` at a
    time, handing the GIL over between passes.

    The join drives the whole C pipeline behind *strings*: 2048 ``ps -j``
    lines (a dozen fields formatted each) can hold the GIL ~10 ms in that
    one call.
    """
    turns = GilTurns()
    iterator = iter(strings)
    parts: list[str] = []
    while group := list(itertools.islice(iterator, JOIN_PASS)):
        parts.append(separator.join(group))
        turns.offer()
    return separator.join(parts)


def pieces(items: list[T], size: int = SORT_CHUNK) -> Iterator[list[T]]:
    """*items* *size* at a time, handing the GIL over between pieces: C-level
    passes over a piece each, never one over 100k items (one C call holds the
    GIL until it returns)."""
    turns = GilTurns()
    for start in range(0, len(items), size):
        yield items[start : start + size]
        turns.offer()
