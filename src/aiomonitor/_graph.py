"""The await graph as a tree of text lines, with cycles reported.  Pure.

A task's children are the tasks it waits for (awaits, gathers, a TaskGroup's
members, a trio nursery's tasks).  With tracing, a task nobody waits for
hangs under the task that created it, so fire-and-forget tasks still find a
place.  What is left is part of a cycle.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

from .backends import release_gently, sorted_gently

Edge = tuple[int, int, str]


def _edge_order(edge: Edge) -> tuple[int, str]:
    return edge[1], edge[2]


def children_map(nodes: Mapping[int, str], edges: Iterable[Edge], creators: Mapping[int, int]) -> dict[int, list[Edge]]:
    children: dict[int, list[Edge]] = defaultdict(list)
    placed: set[int] = set()
    for waiter, child, how in edges:
        if waiter in nodes and child in nodes:
            children[waiter].append((waiter, child, how))
            placed.add(child)
    for child, creator in creators.items():
        if child not in placed and child in nodes and creator in nodes:
            children[creator].append((creator, child, "created"))
            placed.add(child)
    return children


#: Tasks per C-level pass in labels: one pass over 100k held the GIL ~60 ms,
#: one over 4096 up to ~8 ms on a slow machine.
LABEL_CHUNK = 2048


def labels(names: Mapping[int, str], coros: Mapping[int, str]) -> dict[int, str]:
    """Each task's line in ``pstree``: ``name (coroutine) id``, made in C passes."""
    made: dict[int, str] = {}
    ids = iter(names)
    while chunk := list(itertools.islice(ids, LABEL_CHUNK)):
        fields = zip(map(names.__getitem__, chunk), map(coros.__getitem__, chunk), chunk, strict=True)
        made.update(zip(chunk, map("%s (%s) %s".__mod__, fields), strict=True))
        time.sleep(0)  # hand the GIL over between chunks
    return made


def tree_lines(
    nodes: Mapping[int, str], edges: Iterable[Edge], creators: Mapping[int, int]
) -> tuple[list[str], list[list[int]]]:
    """Indented lines for every node, and the cycles found (as id paths)."""
    children = children_map(nodes, edges, creators)
    has_parent = {child for kids in children.values() for _, child, _ in kids}
    lines: list[str] = []
    cycles: list[list[int]] = []
    seen: set[int] = set()
    starts = [node for node in nodes if node not in has_parent]
    starts += [node for node in nodes if node in has_parent]  # cycle members have no root above them
    for start in starts:
        if start in seen:
            continue
        if start not in children and start not in has_parent:  # alone (most tasks, often): its label
            lines.append(nodes[start])
            continue
        # Iterative depth-first walk: deep await chains must not hit the recursion limit.
        # Each entry: node, how it hangs under its parent, the path of ancestors,
        # the drawing in front of it, and whether it is its parent's last child.
        stack: list[tuple[int, str, tuple[int, ...], str, bool]] = [(start, "", (), "", True)]
        while stack:
            node, how, path, prefix, is_last = stack.pop()
            connector = ("└─ " if is_last else "├─ ") if path else ""
            label = f"{prefix}{connector}{nodes[node]}{f'  [{how}]' if how else ''}"
            if node in path:
                cycle = [*path[path.index(node) :], node]
                cycles.append(cycle)
                lines.append(f"{label}  <- cycle: {' -> '.join(map(str, cycle))}")
                continue
            lines.append(label)
            if node in seen:  # reached again by another way: shown once in full
                continue
            seen.add(node)
            child_prefix = prefix + ("   " if is_last else "│  ") if path else ""
            # Pushed in reverse, so children come out in order; a node may have
            # 100k children (every task main created): sorted gently.
            ordered = list(sorted_gently(children.get(node, ()), _edge_order))
            for index, (_, child, child_how) in enumerate(reversed(ordered)):
                stack.append((child, child_how, (*path, node), child_prefix, index == 0))
    for kids in children.values():  # see release_gently: 100k edges must not die in one go
        release_gently(kids)
    release_gently(children, has_parent, seen, starts)
    return lines, cycles


def cycles(graph: Mapping[int, Mapping[int, str]]) -> list[list[int]]:
    """One cycle per strongly connected component that has one (iterative
    Tarjan, then a walk inside the component), each starting at its lowest id."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    components: list[set[int]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[int, list[int]]] = [(root, sorted(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            if successors:
                nxt = successors.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[int] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, {}):
                    components.append(component)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[int], graph: Mapping[int, Mapping[int, str]]) -> list[int]:
    """The shortest cycle through the component's lowest id (breadth first)."""
    start = min(component)
    if start in graph.get(start, {}):
        return [start]
    parents: dict[int, int] = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(n for n in graph.get(node, ()) if n in component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return [start]  # unreachable: every node of a component reaches every other
