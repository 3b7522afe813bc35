"""The column passes (snapshots, chains, tables) against the per-item rules they replace.

The fast paths of ``ps`` gather a field at a time for a chunk of items in C;
each has a plain per-item rule it must agree with.  Hypothesis draws mixes of
real asyncio tasks (every kind of await chain, state and record the rules
tell apart) and tables of odd cells, and chunk sizes that cut them anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiomonitor._query import _queries as _query
from aiomonitor._render import _format, _graph, _table
from aiomonitor.backends import TaskColumns, TaskSnapshot, _asyncio_edges, _columns, asyncio_backend
from aiomonitor.backends._chains import awaited_by, describe_chains
from aiomonitor.backends._frames import await_chain, describe_chain


async def _parked(event: asyncio.Event) -> None:
    await event.wait()


async def _outer(event: asyncio.Event) -> None:
    await _parked(event)


class _OldStyleAwaitable:
    """An awaitable whose ``__await__`` is a generator: a GeneratorType link."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def __await__(self) -> Generator[Any, None, bool]:
        return (yield from self.event.wait().__await__())


async def _through_generator(event: asyncio.Event) -> None:
    await _OldStyleAwaitable(event)


async def _ticks(event: asyncio.Event) -> AsyncIterator[int]:
    await event.wait()
    yield 1


async def _async_for(event: asyncio.Event) -> None:
    async for _ in _ticks(event):
        pass


#: Task bodies: a user coroutine, library code only, nested user coroutines,
#: a generator link, an async generator link.
KINDS: dict[str, Callable[[asyncio.Event], Coroutine[Any, Any, Any]]] = {
    "parked": _parked,
    "library": lambda event: event.wait(),
    "outer": _outer,
    "generator": _through_generator,
    "async_for": _async_for,
}


@contextlib.contextmanager
def _chunks_of(size: int) -> Iterator[None]:
    saved = _columns.COLUMN_CHUNK
    _columns.COLUMN_CHUNK = size
    try:
        yield
    finally:
        _columns.COLUMN_CHUNK = saved


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=0, max_size=30),
    trace=st.booleans(),
    timing=st.booleans(),
    own_factory=st.booleans(),
    cancelled=st.sets(st.integers(0, 29), max_size=5),
    chunk=st.integers(1, 9),
)
def test_column_snapshots_equal_the_per_task_rule(
    kinds: list[str], trace: bool, timing: bool, own_factory: bool, cancelled: set[int], chunk: int
) -> None:
    async def scenario() -> list[tuple[TaskSnapshot, TaskSnapshot]]:
        loop = asyncio.get_running_loop()
        if own_factory:  # the app's own factory: its tasks' records are kept aside (foreign)
            loop.set_task_factory(lambda loop, coro, **kwargs: asyncio.Task(coro, loop=loop, **kwargs))
        backend = asyncio_backend(loop, trace=trace, timing=timing)
        backend.attach()
        event = asyncio.Event()
        try:
            tasks = [asyncio.create_task(KINDS[kind](event), name=f"{kind}-{i}") for i, kind in enumerate(kinds)]
            await asyncio.sleep(0)  # every task starts and parks
            not_started = asyncio.create_task(_parked(event))  # a frame, not yet run
            for index in cancelled:  # cancelling: requested, not yet delivered
                if index < len(tasks):
                    tasks[index].cancel()
            with _chunks_of(chunk):
                columns = list(backend.snapshot_columns())
            pairs = [(task, backend.snapshot_one(task.id)) for chunk in columns for task in chunk.snapshots()]
            event.set()
            await asyncio.gather(*tasks, not_started, return_exceptions=True)
            return pairs
        finally:
            backend.detach()

    pairs = asyncio.run(scenario())
    assert len(pairs) == len(kinds) + 2  # and the test's own task, running
    for from_columns, one_by_one in pairs:
        if from_columns.state == "running":  # the test itself, on another line by now
            assert from_columns._replace(location=None) == one_by_one._replace(location=None)
        else:
            assert from_columns == one_by_one
    assert [task.id for task, _ in pairs] == sorted(task.id for task, _ in pairs)
    states = {task.state for task, _ in pairs}
    assert "running" in states
    if cancelled & set(range(len(kinds))) and hasattr(asyncio.Task, "cancelling"):
        assert "cancelling" in states


def _closed_coroutine() -> Coroutine[Any, Any, Any]:
    coroutine = _parked(asyncio.Event())
    coroutine.close()
    return coroutine


class _AnswersAnything:
    """An awaitable's iterator that answers any attribute (a proxy, a mock),
    and counts the questions: nothing of ours may ask them."""

    asked: ClassVar[list[str]] = []

    def close(self) -> None:  # (what the suspended coroutine's close() calls)
        pass

    def __getattr__(self, name: str) -> Any:
        _AnswersAnything.asked.append(name)
        if name.startswith("\x00"):
            raise RuntimeError("app code ran")
        return self

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return None


class _ProxyAwaitable:
    def __await__(self) -> Any:
        return _AnswersAnything()


async def _awaits_a_proxy() -> None:
    await _ProxyAwaitable()


def _suspended_on_a_proxy() -> Coroutine[Any, Any, Any]:
    coroutine = _awaits_a_proxy()
    coroutine.send(None)  # now suspended: cr_await is the proxy
    return coroutine


class _YieldOnce:
    def __await__(self) -> Generator[None, None, None]:
        yield


async def _inner() -> None:
    await _YieldOnce()


async def _nested() -> None:
    await _inner()


def _suspended_nested() -> Coroutine[Any, Any, Any]:
    """Suspended three levels deep: coroutine, coroutine, generator."""
    coroutine = _nested()
    coroutine.send(None)
    return coroutine


def _awaited_one_by_one(obj: Any) -> Any:
    """What a chain's link awaits, asking only the builtin chain types."""
    kinds = {types.CoroutineType: "cr_await", types.GeneratorType: "gi_yieldfrom", types.AsyncGeneratorType: "ag_await"}
    return getattr(obj, kinds[type(obj)]) if type(obj) in kinds else None


_ODD_KINDS = ["none", "future", "closed", "fresh", "object", "proxy", "on-proxy", "nested"]


@given(st.lists(st.sampled_from(_ODD_KINDS), max_size=12))
def test_chains_of_odd_objects_are_described_as_one_by_one(kinds: list[str]) -> None:
    made: dict[str, Callable[[], Any]] = {
        "none": lambda: None,
        "future": lambda: types.SimpleNamespace(cr_frame="not a frame"),  # not a chain type: no frame read
        "closed": _closed_coroutine,
        "fresh": lambda: _parked(asyncio.Event()),
        "object": object,
        "proxy": _AnswersAnything,
        "on-proxy": _suspended_on_a_proxy,
        "nested": _suspended_nested,
    }
    coros = [made[kind]() for kind in kinds]
    _AnswersAnything.asked.clear()
    try:
        names, locations = describe_chains(coros)
        below = awaited_by(coros)
        assert _AnswersAnything.asked == []
        assert below == list(map(_awaited_one_by_one, coros))
        expected = [describe_chain(await_chain(coro), "") for coro in coros]
        assert [(name or "", location) for name, location in zip(names, locations, strict=True)] == expected
    finally:
        for coro in coros:
            if isinstance(coro, types.CoroutineType):
                coro.close()


_cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=25)
_locations = st.builds(
    "{}/{}.py:{} in {}".format,
    st.text("abc/", max_size=12),
    st.text("xyz", min_size=1, max_size=8),
    st.integers(1, 9999),
    st.text("fgh", min_size=1, max_size=8),
)


@st.composite
def _table_columns(draw: st.DrawFn) -> list[list[str]]:
    """Four columns of one length: each either distinct cells (ids, names)
    or a few values repeated (states, locations), so chunks are fitted both
    from a column's memo and by C passes; the last holds locations."""
    count = draw(st.integers(0, 40))
    columns = []
    for index in range(4):
        cells = _locations if index == 3 else _cells
        if draw(st.booleans()):
            values = draw(st.lists(cells, min_size=1, max_size=3))
            columns.append(draw(st.lists(st.sampled_from(values), min_size=count, max_size=count)))
        else:
            columns.append(draw(st.lists(cells, min_size=count, max_size=count)))
    return columns


_LAYOUT = (
    _table.Column("Id"),
    _table.Column("State", hide_rank=1),
    _table.Column("Busy", number=True, hide_rank=0),
    _table.Column("Where", location=True),
)


@settings(max_examples=100)
@given(
    columns=_table_columns(),
    width=st.none() | st.integers(10, 100),
    wide=st.booleans(),
    chunk=st.integers(1, 12),
)
def test_tables_equal_the_per_cell_rule(columns: list[list[str]], width: int | None, wide: bool, chunk: int) -> None:
    """Chunked, memoised and C-pass fitting equal one cell at a time; only
    locations are ever shortened, and they keep file.py:LINE."""
    saved, _table.CHUNK_ROWS = _table.CHUNK_ROWS, chunk
    try:
        text = "".join(_table.table_text(_LAYOUT, columns, width, state_column=1, wide=wide))
    finally:
        _table.CHUNK_ROWS = saved
    plan = _table.layout(_LAYOUT, columns, width, wide)

    def line(cells: list[str], heading: bool = False) -> str:
        out = []
        for position, (i, room) in enumerate(zip(plan.shown, plan.widths, strict=True)):
            cell = cells[i] if heading else _table.shortened_location(cells[i], room) if i == 3 else cells[i]
            if _LAYOUT[i].number:
                cell = cell.rjust(room)
            elif position < len(plan.shown) - 1:
                cell = cell.ljust(room)
            out.append(cell)
        return "  ".join(out)

    rows = [line(list(row)) for row in zip(*columns, strict=True)]
    heading = line([c.header for c in _LAYOUT], heading=True)
    rule = "  ".join("-" * w for w in plan.widths)
    note = _table.hidden_note(plan, "-w shows all") if plan.hidden else ""
    assert text == "".join(f"{row}\n" for row in [heading.rstrip(), rule, *rows]) + note
    for row in zip(*columns, strict=True):  # the identifiers and names, whole; the locations' file:line
        assert row[0] in text
        file_and_line = row[3].rpartition("/")[2].partition(" in ")[0]
        assert file_and_line in text
    if wide or width is None:
        assert all(row[3] in text for row in zip(*columns, strict=True))
    if wide:
        assert not plan.hidden


@given(location=_locations, width=st.integers(0, 60))
def test_a_shortened_location_keeps_its_file_and_line(location: str, width: int) -> None:
    short = _table.shortened_location(location, width)
    path, _, rest = location.partition(":")
    file_and_line = path.rpartition("/")[2] + ":" + rest.partition(" ")[0]
    assert file_and_line in short
    if len(location) <= width:
        assert short == location
    else:
        assert len(short) <= width or short.endswith(file_and_line)  # as short as it may be
        assert short.startswith("…/") or "/" not in path


@pytest.mark.parametrize("chunk", [1, 3, 2048])
def test_a_selection_of_chunks_counts_and_cuts_like_one_of_tasks(chunk: int) -> None:
    tasks = [TaskSnapshot(i, f"task-{i % 4}", "pending", "coro", None) for i in range(10)]
    with _chunks_of(chunk):
        for query in (_query.TaskQuery(limit=4), _query.TaskQuery(filters=("task-1",)), _query.TaskQuery(limit=0)):
            selection = _query.TaskSelection(_columns.columns_of(tasks), query)
            shown = [task.id for chunk_ in selection.chunks() for task in chunk_.snapshots()]
            expected = [t.id for t in tasks if all(f in t.name for f in query.filters)][: query.limit]
            assert shown == expected
            assert (selection.total, selection.shown) == (10, len(expected))
    names = _format.ps_columns([TaskColumns.of(tasks[:3]), TaskColumns.of(tasks[3:])])[2]
    assert names == [t.name for t in tasks]


@pytest.mark.parametrize("chunk", [1, 2, 5, 2048])
def test_await_edges_are_found_whatever_the_chunks(chunk: int) -> None:
    async def scenario() -> tuple[set[tuple[str, str, str]], int]:
        event = asyncio.Event()
        named: dict[int, str] = {}

        def task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
            made = asyncio.create_task(coro, name=name)
            named[id(made)] = name
            return made

        awaited = task(_parked(event), "awaited")

        async def awaiting() -> None:
            await awaited

        gathered = [task(_parked(event), f"gathered-{i}") for i in range(2)]

        async def gathering() -> None:
            await asyncio.gather(*gathered)

        async def grouping() -> None:
            task_group: Any = getattr(asyncio, "TaskGroup")  # noqa: B009 - (3.11+: not called on 3.10)
            async with task_group() as group:
                for i in range(2):
                    named[id(group.create_task(_parked(event), name=f"member-{i}"))] = f"member-{i}"

        waited = task(_parked(event), "waited")

        async def waiting() -> None:
            await asyncio.wait([waited])

        others = [task(awaiting(), "awaiting"), task(gathering(), "gathering"), task(waiting(), "waiting")]
        if hasattr(asyncio, "TaskGroup"):
            others.append(task(grouping(), "grouping"))
        others += [task(_parked(event), f"alone-{i}") for i in range(5)]
        for _ in range(3):
            await asyncio.sleep(0)
        saved, _asyncio_edges._EDGE_CHUNK = _asyncio_edges._EDGE_CHUNK, chunk
        try:
            edges = _asyncio_edges.await_edges_of(asyncio.all_tasks())
        finally:
            _asyncio_edges._EDGE_CHUNK = saved
        event.set()
        await asyncio.gather(awaited, waited, *gathered, *others)
        return {(named[w], named[a], how) for w, a, how in edges if w in named and a in named}, len(edges)

    found, count = asyncio.run(scenario())
    expected = {
        ("awaiting", "awaited", "await"),
        ("gathering", "gathered-0", "gather"),
        ("gathering", "gathered-1", "gather"),
        ("waiting", "waited", "wait"),
    }
    if hasattr(asyncio, "TaskGroup"):
        expected |= {("grouping", "member-0", "taskgroup"), ("grouping", "member-1", "taskgroup")}
    assert found == expected
    assert count == len(expected)


def _tree_lines_one_by_one(
    nodes: dict[int, str], edges: list[tuple[int, int, str]], creators: dict[int, int]
) -> tuple[list[str], list[list[int]]]:
    """pstree's drawing rule, a node at a time: the oracle for _graph.tree_lines."""
    children: dict[int, list[tuple[int, int, str]]] = {}
    placed: set[int] = set()
    for waiter, child, how in edges:
        if waiter in nodes and child in nodes:
            children.setdefault(waiter, []).append((waiter, child, how))
            placed.add(child)
    for child, creator in creators.items():
        if child not in placed and child in nodes and creator in nodes:
            children.setdefault(creator, []).append((creator, child, "created"))
    has_parent = {child for kids in children.values() for _, child, _ in kids}
    lines: list[str] = []
    cycles: list[list[int]] = []
    seen: set[int] = set()
    # Then what only a cycle reaches; a leaf with a parent is drawn under it, never alone.
    starts = [n for n in nodes if n not in has_parent] + [n for n in nodes if n in has_parent and n in children]
    for start in starts:
        if start in seen:
            continue
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
            if node in seen:
                continue
            seen.add(node)
            child_prefix = prefix + ("   " if is_last else "│  ") if path else ""
            ordered = sorted(children.get(node, ()), key=lambda edge: (edge[1], edge[2]))
            for index, (_, child, child_how) in enumerate(reversed(ordered)):
                stack.append((child, child_how, (*path, node), child_prefix, index == 0))
    return lines, cycles


@settings(max_examples=200)
@given(
    count=st.integers(1, 12),
    edges=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13), st.sampled_from(["await", "gather", "nursery"]))),
    creators=st.dictionaries(st.integers(0, 13), st.integers(0, 13)),
    chunk=st.integers(1, 4),
)
def test_the_drawn_tree_equals_the_node_by_node_rule(
    count: int, edges: list[tuple[int, int, str]], creators: dict[int, int], chunk: int
) -> None:
    nodes = {node: f"task-{node}" for node in range(count)}
    saved, _graph.LABEL_CHUNK = _graph.LABEL_CHUNK, chunk
    try:
        drawn = _graph.tree_lines(nodes, list(edges), dict(creators))
    finally:
        _graph.LABEL_CHUNK = saved
    assert drawn == _tree_lines_one_by_one(nodes, edges, creators)


async def _trio_parked(event: Any) -> None:
    await event.wait()


async def _trio_outer(event: Any) -> None:
    await _trio_parked(event)


@settings(max_examples=25, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["parked", "library", "outer"]), max_size=20),
    before_attach=st.integers(0, 3),
    trace=st.booleans(),
    timing=st.booleans(),
    chunk=st.integers(1, 7),
)
def test_trio_column_snapshots_equal_the_per_task_rule(
    kinds: list[str], before_attach: int, trace: bool, timing: bool, chunk: int
) -> None:
    import trio
    import trio.testing

    from aiomonitor.backends import trio_backend

    async def scenario() -> list[tuple[TaskSnapshot, TaskSnapshot]]:
        event = trio.Event()
        bodies = {"parked": _trio_parked, "library": lambda e: e.wait(), "outer": _trio_outer}
        async with trio.open_nursery() as nursery:
            for i in range(before_attach):  # unwrapped: started before the monitor
                nursery.start_soon(_trio_parked, event, name=f"early-{i}")
            backend = trio_backend(trace=trace, timing=timing)
            backend.attach()
            try:
                for i, kind in enumerate(kinds):
                    nursery.start_soon(bodies[kind], event, name=f"{kind}-{i}")
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(_trio_parked, event, name="not-started")  # no step yet
                with _chunks_of(chunk):
                    columns = list(backend.snapshot_columns())
                    edges = backend.await_edges()
                pairs = [(task, backend.snapshot_one(task.id)) for chunk in columns for task in chunk.snapshots()]
                assert {(parent, child) for parent, child, _ in edges} == {
                    (task.parent_id, task.id) for task, _ in pairs if task.parent_id is not None
                }
            finally:
                backend.detach()
            event.set()
        return pairs

    pairs = trio.run(scenario)
    assert len(pairs) >= len(kinds) + before_attach + 2  # and the test's own tasks
    for from_columns, one_by_one in pairs:
        if from_columns.state == "running":  # the test itself, on another line by now
            assert from_columns._replace(location=None) == one_by_one._replace(location=None)
        else:
            assert from_columns == one_by_one
