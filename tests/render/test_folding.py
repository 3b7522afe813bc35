"""pstree's folding of alike siblings, held to the per-leaf rule its C passes replaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiomonitor._query._locations import format_location
from aiomonitor._render import _graph
from aiomonitor.backends import FrameInfo

_PLACES = [FrameInfo("app.py", 1, "f"), FrameInfo("app.py", 2, "g"), None]


def per_leaf(run: list[tuple[int, str | None]], nodes: dict[int, str], folding: _graph.Folding) -> list[str]:
    """The rule, one Python step per leaf."""
    alike: dict[tuple[str, FrameInfo | None, str | None], list[int]] = {}
    for child, how in run:
        alike.setdefault((folding.coros[child], folding.locations.get(child), how), []).append(child)
    big = sorted(
        ((k, ids) for k, ids in alike.items() if len(ids) >= _graph.FOLD_AT), key=lambda i: (-len(i[1]), i[1][0])
    )

    def tag(how: str | None) -> str:
        return "" if how is None else f"  [{how}]"

    labels = []
    for (coro, location, how), ids in big:
        names = {folding.names[child] for child in ids}
        name = names.pop() if len(names) == 1 else "tasks"
        shown = ", ".join(map(str, ids[: _graph.FOLD_EXAMPLES])) + (", …" if len(ids) > _graph.FOLD_EXAMPLES else "")
        labels.append(
            f"{len(ids)} \N{MULTIPLICATION SIGN} {name} ({coro}) {format_location(location)}{tag(how)}  e.g. {shown}"
        )
    gone = {child for _, ids in big for child in ids}
    return labels + [nodes[child] + tag(how) for child, how in run if child not in gone]


_leaves = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(_PLACES),
        st.sampled_from(["x", "y"]),
        st.sampled_from([None, "await"]),
    ),
    max_size=40,
)


@given(leaves=_leaves, chunk=st.integers(1, 9))
def test_folding_equals_the_per_leaf_rule(
    leaves: list[tuple[str, FrameInfo | None, str, str | None]], chunk: int
) -> None:
    run = [(1000 + index, how) for index, (_, _, _, how) in enumerate(leaves)]
    coros = {1000 + index: coro for index, (coro, _, _, _) in enumerate(leaves)}
    locations = {1000 + index: place for index, (_, place, _, _) in enumerate(leaves)}
    names = {1000 + index: name for index, (_, _, name, _) in enumerate(leaves)}
    nodes = {task: f"{names[task]} ({coros[task]}) {task}" for task in names}
    folding = _graph.Folding(names, coros, locations)
    saved, _graph.LABEL_CHUNK = _graph.LABEL_CHUNK, chunk
    try:
        assert _graph.folded_labels(run, nodes, folding) == per_leaf(run, nodes, folding)
    finally:
        _graph.LABEL_CHUNK = saved


def test_a_thousand_alike_leaves_are_one_line() -> None:
    run = [(task, "taskgroup") for task in range(1000)]
    same = dict.fromkeys(range(1000), "request")
    folding = _graph.Folding(same, dict.fromkeys(range(1000), "handle"), dict.fromkeys(range(1000), _PLACES[0]))
    (line,) = _graph.folded_labels(run, dict.fromkeys(range(1000), "?"), folding)
    assert line == "1000 \N{MULTIPLICATION SIGN} request (handle) app.py:1 in f  [taskgroup]  e.g. 0, 1, 2, …"
