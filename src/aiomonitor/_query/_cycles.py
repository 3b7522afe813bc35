"""Cycles in a directed graph of task ids: where tasks wait for each other.  Pure.

Used by ``doctor`` (a cycle through a lock is a deadlock) and by the await
tree's renderers (a cycle of awaits is reported).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping


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
