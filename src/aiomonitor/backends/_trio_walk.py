"""Walking trio's task tree from the monitor's thread.

trio keeps no list of tasks: the tree of nurseries is the only registry, so
every listing is a walk from the root task.  Each level is copied by one C
call (see ``_children_of``), so a walk from this thread never sees a level
half-changed; a collection that changes size while being copied raises
RuntimeError, and the backend walks again.
"""

from __future__ import annotations

import trio

from .._gil._passes import GIL_YIELD_EVERY, GilTurns, smallest_gently, sorted_by_id

#: Siblings sorted by one C call; more are sorted in GIL-friendly chunks.
_ONE_SORT_MAX = 4096


def walk_tree(root: trio.lowlevel.Task, ordered: bool) -> tuple[list[trio.lowlevel.Task], list[int | None]]:
    """Every task under *root*, parents first, and each one's parent id;
    *ordered*: siblings by id (see ``TrioBackend._walk``).  Raises
    RuntimeError if trio changed a collection while it was copied."""
    turns = GilTurns()
    tasks: list[trio.lowlevel.Task] = []
    parents: list[int | None] = []
    pending: list[trio.lowlevel.Task] = [root]
    pending_parents: list[int | None] = [None]
    while pending:
        task = pending.pop()
        tasks.append(task)
        if len(tasks) % GIL_YIELD_EVERY == 0:
            turns.offer()  # as yielding() does: the app's loop must not wait a switch interval
        parents.append(pending_parents.pop())
        if not getattr(task, "_child_nurseries", True):
            # A leaf (most tasks): the private list's truth is one atomic
            # read, where the public property copies it, a call and a
            # list per task (a third of the walk at 100k).
            continue
        children = _children_of(task)
        if ordered:
            # One big sort would hold the GIL for tens of ms at 100k
            # children; sorted_by_id hands it back as it goes.
            if len(children) > _ONE_SORT_MAX:
                children = sorted_by_id(children)
            else:
                children.sort(key=id)
            children.reverse()  # popped from the end: lowest id first
        pending.extend(children)
        pending_parents.extend([id(task)] * len(children))
    return tasks, parents


def _children_of(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    """*task*'s child tasks, each nursery's copied by one C call.

    trio's ``child_tasks`` builds a frozenset (a new hash table), which the
    caller copies into a list and frees: three C calls of 100k items for a
    big nursery, one of which can hold the GIL ~10 ms (page faults for the
    table).  A list of the nursery's own set is one
    pass, a third of that; the public copy stands in if trio renames it.
    """
    children: list[trio.lowlevel.Task] = []
    for nursery in task.child_nurseries:
        own = getattr(nursery, "_children", None)
        children.extend(own if isinstance(own, set) else nursery.child_tasks)
    return children


def first_in_tree_order(root: trio.lowlevel.Task, limit: int) -> tuple[list[trio.lowlevel.Task], list[int | None]]:
    """The first *limit* tasks of ``walk_tree(root, ordered=True)``, and their parents' ids.

    Tree order visits each task's children by id, and each child brings at
    least itself, so no task past its parent's first *limit* children by id
    can be among the first *limit*: only those are picked and sorted, and
    the walk stops at *limit*.
    """
    tasks: list[trio.lowlevel.Task] = []
    parents: list[int | None] = []
    pending: list[trio.lowlevel.Task] = [root]
    pending_parents: list[int | None] = [None]
    while pending and len(tasks) < limit:
        task = pending.pop()
        tasks.append(task)
        parents.append(pending_parents.pop())
        if not getattr(task, "_child_nurseries", True):  # a leaf: see walk_tree
            continue
        children = smallest_gently(_children_of(task), limit - len(tasks), key=id)
        children.reverse()  # popped from the end: lowest id first
        pending.extend(children)
        pending_parents.extend([id(task)] * len(children))
    return tasks, parents
