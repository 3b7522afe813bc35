"""The await graph as a tree of text lines, with cycles reported.  Pure.

A task's children are the tasks it waits for (awaits, gathers, a TaskGroup's
members, a trio nursery's tasks).  With tracing, a task nobody waits for
hangs under the task that created it, so fire-and-forget tasks still find a
place.  What is left is part of a cycle.
"""

from __future__ import annotations

import collections
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .._gil._passes import GilTurns, pieces, release_gently, sorted_in_runs
from .._query._locations import format_location
from ..backends import FrameInfo

Edge = tuple[int, int, str]
#: Alike leaf siblings are folded into one line from this many on.
FOLD_AT = 3
#: Ids a folded line names as examples.
FOLD_EXAMPLES = 3


@dataclass(frozen=True)
class Folding:
    """What folding alike siblings needs: tasks are alike when they run the
    same coroutine at the same place and hang under the same parent the same way."""

    names: Mapping[int, str]
    coros: Mapping[int, str]
    locations: Mapping[int, FrameInfo | None]


def children_map(nodes: Mapping[int, str], edges: Iterable[Edge], creators: Mapping[int, int]) -> dict[int, list[Edge]]:
    """Each node's children edges: the await edges between nodes, then, for
    nodes no edge placed, a "created" edge from their creator.  In C-level
    passes over chunks (100k edges under one nursery or creator are common)."""
    children: dict[int, list[Edge]] = defaultdict(list)
    placed: set[int] = set()
    for piece in pieces(list(edges), LABEL_CHUNK):
        waiter_in = map(nodes.__contains__, map(operator.itemgetter(0), piece))
        inside = list(map(operator.and_, waiter_in, map(nodes.__contains__, map(operator.itemgetter(1), piece))))
        kept = list(itertools.compress(piece, inside))
        _add_children(children, kept)
        placed.update(map(operator.itemgetter(1), kept))
    for made_piece in pieces(list(creators.items()), LABEL_CHUNK):
        made_ids = list(map(operator.itemgetter(0), made_piece))
        makers = list(map(operator.itemgetter(1), made_piece))
        unplaced = map(operator.not_, map(placed.__contains__, made_ids))
        both_in = map(operator.and_, map(nodes.__contains__, made_ids), map(nodes.__contains__, makers))
        wanted = list(map(operator.and_, unplaced, both_in))
        made = zip(
            itertools.compress(makers, wanted), itertools.compress(made_ids, wanted), itertools.repeat("created")
        )
        _add_children(children, list(made))
    return children


def _add_children(children: dict[int, list[Edge]], edges: list[Edge]) -> None:
    """Append *edges* to their waiter's list (grouped by a C sort, not a Python step per edge)."""
    by_waiter = operator.itemgetter(0)
    for waiter, group in itertools.groupby(sorted(edges, key=by_waiter), by_waiter):
        children[waiter].extend(group)


#: Tasks per C-level pass in children_map and tree_lines.
LABEL_CHUNK = 2048
#: Labels made per C-level pass: one pass over 100k holds the GIL ~60 ms,
#: one over 2048 up to ~8 ms (``benchmarks/gil_holds.py``).
_LABEL_PASS = 512


def labels(names: Mapping[int, str], coros: Mapping[int, str]) -> dict[int, str]:
    """Each task's line in ``pstree``: ``name (coroutine) id``, made in C passes.

    Written over a copy of *names* (a dict: one C copy of its table), never
    into a growing dict: growing one to 100k entries rehashes it into fresh
    memory on the way, and the last of those resizes held the GIL ~4-8 ms.
    """
    turns = GilTurns()
    made = dict(names)
    ids = iter(names)
    while chunk := list(itertools.islice(ids, _LABEL_PASS)):
        fields = zip(map(names.__getitem__, chunk), map(coros.__getitem__, chunk), chunk, strict=True)
        made.update(zip(chunk, map("%s (%s) %s".__mod__, fields), strict=True))
        turns.offer()  # hand the GIL over between chunks
    return made


def tree_lines(
    nodes: Mapping[int, str], edges: Iterable[Edge], creators: Mapping[int, int], folding: Folding | None = None
) -> tuple[list[str], list[list[int]]]:
    """Indented lines for every node, and the cycles found (as id paths).

    With *folding*, a parent's childless children that are alike (see
    :class:`Folding`), :data:`FOLD_AT` or more of them, are one line:
    ``├─ 997 x app (handle) app.py:21 in handle  [taskgroup]  e.g. 11, 12, 13``
    (the x is a multiplication sign).  Alike tasks alone at the top level
    (no parent, no children) fold the same way.

    A depth-first walk with a stack of (children, next index) per level, not
    recursion (deep await chains must not hit the recursion limit).  A run
    of children without children of their own (trio's 100k nursery children,
    asyncio's 100k tasks under their creator) is drawn by C-level passes:
    a Python step per node made pstree's drawing 1.2 s at 100k trio tasks.
    """
    children = children_map(nodes, edges, creators)
    turns = GilTurns()
    has_parent = {child for kids in children.values() for _, child, _ in kids}
    lines: list[str] = []
    cycles: list[list[int]] = []
    seen: set[int] = set()
    starts = [node for node in nodes if node not in has_parent]
    # Cycle members have no root above them; a leaf with a parent is drawn
    # under it, so leaves need no place in ``seen`` (100k of them grew it
    # through rehashes of fresh memory, one of which held the GIL ~7 ms).
    starts += [node for node in nodes if node in has_parent and node in children]
    if folding is not None:
        alone = [(node, None) for node in starts if node not in children and node not in has_parent]
        if len(alone) >= FOLD_AT:
            lines.extend(folded_labels(alone, nodes, folding))
            starts = [node for node in starts if node in children or node in has_parent]
    for start in starts:
        if start in seen:
            continue
        lines.append(nodes[start])
        if start not in children:  # alone (most tasks, often)
            continue
        seen.add(start)
        # Per level: the node's children (edges, in order), whether each is a
        # leaf, the next one to draw, the drawing in front of them, and the
        # path of ancestors down to the node.
        stack = [_Level(children[start], children, "", (start,))]
        while stack:
            level = stack[-1]
            if level.next >= len(level.kids):
                stack.pop()
                continue
            level.next = _draw_leaves(level, nodes, lines, turns, folding)
            if level.next >= len(level.kids):
                continue
            _, child, how = level.kids[level.next]
            level.next += 1
            is_last = level.next == len(level.kids)
            label = f"{level.prefix}{'└─ ' if is_last else '├─ '}{nodes[child]}  [{how}]"
            if child in level.path:
                cycle = [*level.path[level.path.index(child) :], child]
                cycles.append(cycle)
                lines.append(f"{label}  <- cycle: {' -> '.join(map(str, cycle))}")
                continue
            lines.append(label)
            if child in seen:  # reached again by another way: shown once in full
                continue
            seen.add(child)
            prefix = level.prefix + ("   " if is_last else "│  ")
            stack.append(_Level(children[child], children, prefix, (*level.path, child)))
    for kids in children.values():  # see release_gently: 100k edges must not die in one go
        release_gently(kids)
    release_gently(children, has_parent, seen, starts)
    return lines, cycles


class _Level:
    """One node's children being drawn by tree_lines."""

    __slots__ = ("kids", "leaf", "next", "path", "prefix")

    def __init__(
        self, kids: list[Edge], children: Mapping[int, list[Edge]], prefix: str, path: tuple[int, ...]
    ) -> None:
        # In order of child id, then how: C sorts (chunked: a node may have
        # 100k children), by how first only where hows differ.
        hows: set[str] = set()
        for piece in pieces(kids, LABEL_CHUNK):
            hows.update(map(_HOW, piece))
        self.kids = sorted_in_runs(sorted_in_runs(kids, _HOW) if len(hows) > 1 else kids, _CHILD)
        self.leaf: list[bool] = []
        for piece in pieces(self.kids, LABEL_CHUNK):
            self.leaf.extend(map(operator.not_, map(children.__contains__, map(_CHILD, piece))))
        self.next = 0
        self.prefix = prefix
        self.path = path


_CHILD, _HOW = operator.itemgetter(1), operator.itemgetter(2)


def _draw_leaves(
    level: _Level, nodes: Mapping[int, str], lines: list[str], turns: GilTurns, folding: Folding | None = None
) -> int:
    """Draw the run of leaf children from ``level.next`` (folded, with
    *folding*); the index after it.

    *turns* is the whole drawing's: a tree of many short runs still offers
    the GIL once a millisecond."""
    start = level.next
    try:
        end = level.leaf.index(False, start)
    except ValueError:
        end = len(level.kids)
    ends_level = end == len(level.kids)
    if folding is not None and end - start >= FOLD_AT:
        _draw_folded(level.kids[start:end], level.prefix, ends_level, nodes, lines, folding)
        turns.offer()
        return end
    for piece in range(start, end, LABEL_CHUNK):
        run = level.kids[piece : min(piece + LABEL_CHUNK, end)]
        ids = list(map(_CHILD, run))
        connectors = ["├─ "] * len(run)
        if piece + len(run) == len(level.kids):
            connectors[-1] = "└─ "
        fields = zip(
            [level.prefix] * len(run),
            connectors,
            map(nodes.__getitem__, ids),
            map(_HOW, run),
            strict=True,
        )
        lines.extend(map("%s%s%s  [%s]".__mod__, fields))
        turns.offer()
    return end


def _draw_folded(
    run: list[Edge], prefix: str, ends_level: bool, nodes: Mapping[int, str], lines: list[str], folding: Folding
) -> None:
    """A run of leaf children, folded (see ``folded_labels``), with their connectors."""
    labels = folded_labels([(child, how) for _, child, how in run], nodes, folding)
    connectors = ["├─ "] * len(labels)
    if ends_level:
        connectors[-1] = "└─ "
    lines.extend(map(f"{prefix}%s%s".__mod__, zip(connectors, labels, strict=True)))


_Key = tuple[str, "FrameInfo | None", "str | None"]
_CHILD_OF, _HOW_OF = operator.itemgetter(0), operator.itemgetter(1)


def folded_labels(run: Sequence[tuple[int, str | None]], nodes: Mapping[int, str], folding: Folding) -> list[str]:
    """Lines for (task, how) leaves: each set of FOLD_AT or more alike ones
    as one line (the largest first), then the others one line each, in order.

    By C passes a chunk at a time, the GIL offered between chunks: a Python
    step per leaf cost ``pstree`` a fifth more at 100k tasks.  Nothing as
    big as the run is kept beyond a pass (a dict or a list of tuples per
    leaf would grow, and die, in single long C calls): the leaves' keys are
    made again for each pass, and what is counted has one entry per kind.
    """
    turns = GilTurns()
    coros, locations, names = folding.coros, folding.locations, folding.names

    def keys_of(piece: Sequence[tuple[int, str | None]]) -> list[_Key]:
        ids = list(map(_CHILD_OF, piece))
        where = map(locations.get, ids)
        return list(zip(map(coros.__getitem__, ids), where, map(_HOW_OF, piece), strict=True))

    run = list(run)
    counts: collections.Counter[_Key] = collections.Counter()
    for piece in pieces(run, LABEL_CHUNK):
        counts.update(keys_of(piece))
        turns.offer()
    big = {key for key, count in counts.items() if count >= FOLD_AT}
    if not big:
        return [nodes[child] + _how_tag(how) for child, how in run]
    examples = _first_of_each(big, run, keys_of)
    first_names = {key: names[found[0]] for key, found in examples.items()}
    named_alike: collections.Counter[_Key] = collections.Counter()  # members named as the first one
    alone: list[tuple[int, str | None]] = []
    for piece in pieces(run, LABEL_CHUNK):
        piece_keys = keys_of(piece)
        same_name = map(operator.eq, map(names.__getitem__, map(_CHILD_OF, piece)), map(first_names.get, piece_keys))
        named_alike.update(itertools.compress(piece_keys, same_name))
        alone.extend(itertools.compress(piece, map(operator.not_, map(big.__contains__, piece_keys))))
        turns.offer()
    labels = []
    for key in sorted(big, key=lambda key: (-counts[key], examples[key][0])):
        name = first_names[key] if named_alike[key] == counts[key] else "tasks"
        labels.append(_folded_label(key, counts[key], examples[key], name))
    labels.extend(nodes[child] + _how_tag(how) for child, how in alone)
    return labels


def _first_of_each(
    big: set[_Key], run: list[tuple[int, str | None]], keys_of: Callable[[Sequence[tuple[int, str | None]]], list[_Key]]
) -> dict[_Key, list[int]]:
    """The first FOLD_EXAMPLES ids of each key in *big*, in run order (stops once all are found)."""
    examples: dict[_Key, list[int]] = {key: [] for key in big}
    wanted = len(big)
    for piece in pieces(run, LABEL_CHUNK):
        for key, (child, _) in zip(keys_of(piece), piece, strict=True):
            found = examples.get(key)
            if found is not None and len(found) < FOLD_EXAMPLES:
                found.append(child)
                if len(found) == FOLD_EXAMPLES:
                    wanted -= 1
                    if not wanted:
                        return examples
    return examples


def _how_tag(how: str | None) -> str:
    return "" if how is None else f"  [{how}]"


def _folded_label(key: _Key, count: int, examples: list[int], name: str) -> str:
    coro, location, how = key
    shown = ", ".join(map(str, examples)) + (", …" if count > len(examples) else "")
    return f"{count} {_TIMES} {name} ({coro}) {format_location(location)}{_how_tag(how)}  e.g. {shown}"


#: How a folded line counts its tasks (``997 x app``, with the sign).
_TIMES = "\N{MULTIPLICATION SIGN}"
