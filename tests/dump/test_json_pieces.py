"""The bundle's JSON, written in pieces: the same document, and no piece
that made one call to the C encoder with a big container."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aiomonitor._dump._bundle import SMALL_CONTAINER, TASKS_PER_PIECE, json_pieces

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
KEYS = st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)


def documents() -> st.SearchStrategy[Any]:
    """JSON-like values, with lists and dicts both side of SMALL_CONTAINER."""
    return st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=SMALL_CONTAINER + 40) | st.dictionaries(KEYS, inner, max_size=SMALL_CONTAINER + 10)
        ),
        max_leaves=400,
    )


@settings(max_examples=150, deadline=None)
@given(documents())
def test_the_pieces_make_the_same_document(value: Any) -> None:
    assert json.loads("".join(json_pieces(value))) == json.loads(json.dumps(value))


def test_a_big_list_is_written_in_batches() -> None:
    waits = [{"task_id": n, "kind": "asyncio.Event", "target": [n, "x"]} for n in range(10_000)]
    pieces = list(json_pieces({"waits": waits, "small": [1, 2, 3]}))
    assert json.loads("".join(pieces)) == {"waits": waits, "small": [1, 2, 3]}
    longest = max(pieces, key=len)
    # No piece holds more than one batch of items (each item's text is < 100 characters).
    assert len(longest) < TASKS_PER_PIECE * 100, len(longest)
    assert len(pieces) >= len(waits) // TASKS_PER_PIECE


def test_a_big_list_inside_a_small_one_is_reached() -> None:
    findings = [{"kind": "leak", "task_ids": list(range(5_000))}]
    pieces = list(json_pieces({"doctor": {"findings": findings}}))
    assert json.loads("".join(pieces)) == {"doctor": {"findings": findings}}
    assert max(map(len, pieces)) < TASKS_PER_PIECE * 10
