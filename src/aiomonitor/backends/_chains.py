"""Where many tasks are, in C-level passes: ``describe_chain`` for a chunk at once.

``ps`` at 100k tasks spent half its snapshot in a Python loop per task
(``await_chain``, ``describe_chain``, ``FrameInfo.from_frame``: a few
microseconds a task).  Here the await chains of a whole chunk are walked one
*level* at a time: each step is a ``map`` of a builtin (``getattr``, ``id``,
``dict.get``, ``itemgetter``) over the chunk, so the loop runs in C.  Python
runs once per distinct chain *shape* (the code objects from outermost to
innermost), and 100k tasks usually have a handful of shapes.

The answers are ``describe_chain(await_chain(coro), ...)``'s: hypothesis
tests compare them on random mixes of chains and tasks, against
``snapshot_one``, which still takes that per-task path.
"""

from __future__ import annotations

import itertools
import operator
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._ending import EndingCoroutine
from ._frames import MAX_CHAIN, code_facts
from ._records import FRAME_INFO_CACHE, FrameInfo
from ._timing import TimedCoroutine

#: Per chain type: the attribute holding its frame, and what it awaits.
_FRAME_ATTRIBUTE = {
    types.CoroutineType: "cr_frame",
    types.GeneratorType: "gi_frame",
    types.AsyncGeneratorType: "ag_frame",
}
_AWAITED_ATTRIBUTE = {
    types.CoroutineType: "cr_await",
    types.GeneratorType: "gi_yieldfrom",
    types.AsyncGeneratorType: "ag_await",
    TimedCoroutine: "coro",  # trace_timing's proxy: looked through, no frame of its own
    EndingCoroutine: "coro",  # trio's cancel's proxy: likewise
}
#: Per chain type: the attribute saying it runs right now (its frame executes in the loop's thread).
_RUNNING_ATTRIBUTE = {
    types.CoroutineType: "cr_running",
    types.GeneratorType: "gi_running",
    types.AsyncGeneratorType: "ag_running",
}
#: What a level may hold to be read without ``only_chain_types``.
_READABLE = {*_AWAITED_ATTRIBUTE, type(None)}
#: An attribute nothing has: ``getattr(x, _NOTHING, None)`` is None.
_NOTHING = "\x00"
_repeat = itertools.repeat
# Typed loosely: what map() passes them is known only at run time.
_attribute: Callable[[Any, str, Any], Any] = getattr
_frame_attribute: Callable[[type, str], str] = _FRAME_ATTRIBUTE.get  # type: ignore[assignment]
_awaited_attribute: Callable[[type, str], str] = _AWAITED_ATTRIBUTE.get  # type: ignore[assignment]
_running_attribute: Callable[[type, str], str] = _RUNNING_ATTRIBUTE.get  # type: ignore[assignment]
_memoised: Callable[[tuple[int, Any], Any], Any] = FRAME_INFO_CACHE.get
#: What a chain shape says: (coroutine name or None, index of the location's
#: frame in the chain or -1 for none, and the id of that frame's code).
_Described = tuple["str | None", int, int]
_NOT_MEMOISED = itertools.repeat((None, None))


def awaited_by(level: Sequence[Any]) -> list[Any]:
    """What each of *level* awaits: the next level of their chains (None where they end)."""
    return _next_level(level, set(map(type, level)))


def only_chain_types(level: Sequence[Any]) -> list[Any]:
    """*level* with None for whatever is not a chain type.

    An await chain can end in any object (what an app's ``__await__``
    returns, a mock in a test); asking it for an attribute could run its
    ``__getattr__``, app code, from our thread, and a proxy would answer
    anything.  Only the builtin chain types (and our timing proxy) are
    read.  ``(None, obj)[is_chain]`` picks, in C.
    """
    pairs = zip(_repeat(None), level, strict=False)
    return list(map(operator.getitem, pairs, map(_AWAITED_ATTRIBUTE.__contains__, map(type, level))))


def _read(level: Sequence[Any], kinds: set[type], attributes: Callable[[type, str], str]) -> list[Any]:
    """Per item of *level* (of these *kinds*), the attribute *attributes*
    names for its type (None where it names none): the common level, of one
    chain type and perhaps None, by one C pass with one name."""
    kinds = kinds - {type(None)}
    if not kinds:
        return [None] * len(level)
    if len(kinds) == 1:
        return list(map(_attribute, level, _repeat(attributes(kinds.pop(), _NOTHING)), _repeat(None)))
    return list(map(_attribute, level, map(attributes, map(type, level), _repeat(_NOTHING)), _repeat(None)))


def _readable(level: Sequence[Any], kinds: set[type]) -> tuple[Sequence[Any], set[type]]:
    """*level* and its *kinds*, with None for whatever is not a chain type
    when something is (see ``only_chain_types``)."""
    if kinds <= _READABLE:
        return level, kinds
    level = only_chain_types(level)
    return level, set(map(type, level))


def _next_level(level: Sequence[Any], kinds: set[type]) -> list[Any]:
    """What each of *level* (its items' *kinds*) awaits: only chain types are
    read, and nothing past one that runs right now.

    What a running coroutine awaits is read from its frame's value stack,
    which is not kept up to date while the frame executes: read from our
    thread it can be garbage, and CPython 3.12 crashed on it (``cr_await`` of
    the task the loop was in the middle of).  Its chain ends there; the
    backends add what it runs from the loop thread's own stack.
    """
    return _awaited(*_readable(level, kinds))


def _awaited(level: Sequence[Any], kinds: set[type]) -> list[Any]:
    """What each of a readable *level* awaits (None past a running one: see ``_next_level``)."""
    awaited = _read(level, kinds, _awaited_attribute)
    running = _read(level, kinds, _running_attribute)
    if True not in running:
        return awaited
    return list(map(operator.getitem, zip(awaited, _repeat(None), strict=False), map(bool, running)))


class ChainLevels:
    """The await chains of many coroutines, walked level by level in C passes.

    ``frames[level][i]`` is the frame at that depth of coroutine *i*'s chain
    (None where it has ended, or at the timing proxy's level), and
    ``code_ids`` the ids of their codes.  A chain ends at a Future, or
    anything not a chain type (read as None: see ``only_chain_types``), as
    await_chain's loop ends there.

    A level's kinds are one C pass (a set of types); a level of one chain
    type (coroutines, and the None of chains that ended) is read with one
    attribute name, and a level of no chain type (the Futures most tasks
    are parked on) ends the walk: about a third of the passes per level
    that checking each item's type took.
    """

    def __init__(self, coros: Sequence[Any]) -> None:
        self.count = len(coros)
        self.frames: list[list[Any]] = []
        self.code_ids: list[list[int]] = []
        #: The codes seen, by id: keeps them alive while their ids are keys.
        self.codes: dict[int, Any] = {}
        level = coros
        for _ in range(MAX_CHAIN):
            kinds = set(map(type, level))
            if kinds.isdisjoint(_AWAITED_ATTRIBUTE):
                break
            level, kinds = _readable(level, kinds)
            frames = _read(level, kinds, _frame_attribute)
            frame_codes = list(map(getattr, frames, _repeat("f_code"), _repeat(None)))
            code_ids = list(map(id, frame_codes))
            self.codes.update(zip(code_ids, frame_codes, strict=True))
            self.frames.append(frames)
            self.code_ids.append(code_ids)
            level = _awaited(level, kinds)

    def shapes(self) -> list[tuple[int, ...]]:
        """Per coroutine, its chain's shape: the ids of its codes, level by level."""
        if not self.code_ids:
            return [()] * self.count
        return list(zip(*self.code_ids, strict=True))

    def chains(self) -> Iterator[tuple[Any, ...]]:
        """Per coroutine, its chain's frames (None where there is none), and a None last."""
        return zip(*self.frames, _repeat(None), strict=False)


def describe_chains(coros: Sequence[Any]) -> tuple[list[str | None], list[FrameInfo | None]]:
    """For each coroutine: the name of its outermost coroutine in user code
    (None if there is none: the caller picks a fallback), and its location,
    as ``describe_chain(await_chain(coro), ...)`` says.

    Chains are walked level by level for all of *coros*; every step keeps
    to C (see the module's docstring).  Call on chunks of a few thousand:
    each step holds the GIL for the whole chunk.
    """
    levels = ChainLevels(coros)
    count = len(coros)
    if not levels.frames:
        return [None] * count, [None] * count
    if all(len(set(code_ids)) == 1 for code_ids in levels.code_ids):
        # One shape (a chunk of tasks parked alike, the common case): its
        # choice holds for all, and the location's frames are one level's
        # list; no pass per task to build, hash and look up shapes.
        name, level, code_id = _describe_shape(tuple(ids[0] for ids in levels.code_ids), levels.codes)
        where = levels.frames[level] if level >= 0 else [None] * count
        return [name] * count, _frame_infos(where, [code_id] * count)
    shapes = levels.shapes()
    described = {shape: _describe_shape(shape, levels.codes) for shape in set(shapes)}
    facts = list(map(described.__getitem__, shapes))
    names: list[str | None] = list(map(operator.itemgetter(0), facts))
    # Index -1 of a chain (its None) means "no location".
    where = list(map(operator.getitem, levels.chains(), map(operator.itemgetter(1), facts)))
    return names, _frame_infos(where, list(map(operator.itemgetter(2), facts)))


def _describe_shape(shape: tuple[int, ...], codes: dict[int, Any]) -> _Described:
    """describe_chain's choice for a chain of these codes (by id; a level
    without a frame, the timing proxy's or a finished coroutine's, has
    None's): the name, and the level of the location with its code's id."""
    name: str | None = None
    innermost_user = innermost = -1
    for index, code_id in enumerate(shape):
        code = codes[code_id]
        if code is None:
            continue
        _, library, qualname = code_facts(code)
        innermost = index
        if not library:
            if name is None:
                name = qualname
            innermost_user = index
    chosen = innermost_user if innermost_user >= 0 else innermost
    return name, chosen, (shape[chosen] if chosen >= 0 else id(None))


def _frame_infos(frames: list[Any], code_ids: list[int]) -> list[FrameInfo | None]:
    """``FrameInfo.from_frame`` of each frame (of the code with that id;
    None stays None), from its memo in C passes."""
    keys = zip(code_ids, map(getattr, frames, _repeat("f_lasti"), _repeat(None)), strict=True)
    infos: list[FrameInfo | None] = list(map(operator.itemgetter(1), map(_memoised, keys, _NOT_MEMOISED)))
    if None in infos:  # frames not in the memo yet: Python once each (the next ps finds them there)
        for index in itertools.compress(range(len(frames)), map(operator.is_, infos, _repeat(None))):
            frame = frames[index]
            if frame is not None:
                infos[index] = FrameInfo.from_frame(frame)
    return infos
