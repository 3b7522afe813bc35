"""Command resolution, argument mapping and formatting: pure functions."""

from __future__ import annotations

import ast
import enum
import importlib
import json
import pathlib
import re
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomonitor._protocol import commands
from aiomonitor._protocol.commands import (
    ArgumentMappingException,
    CommandError,
    MultipleCommandException,
    UnknownCommandException,
)
from aiomonitor._render import _format, _json, _table
from aiomonitor._render._style import COLOUR, PLAIN, style_for_terminal
from aiomonitor.backends import FrameInfo, TaskColumns, TaskSnapshot
from aiomonitor.utils import alt_names


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


class Commands:
    @alt_names("s st")
    def do_status(self) -> None:
        """Status"""

    def do_stop(self, when: Optional[int] = None) -> None:  # noqa: UP045 - the old spelling must work too
        """Stop"""

    def do_paint(self, color: Color, *rest: str) -> None:
        """Paint"""


def test_resolution_by_name_alias_and_unique_prefix() -> None:
    obj = Commands()
    assert commands.resolve(obj, "status") == "do_status"
    assert commands.resolve(obj, "st") == "do_status"  # an exact alias beats the prefix of stop
    assert commands.resolve(obj, "sto") == "do_stop"
    assert commands.resolve(obj, "pa") == "do_paint"
    with pytest.raises(MultipleCommandException, match=r'"sta?": could be|could be'):
        commands.resolve(obj, "")
    with pytest.raises(CommandError, match="No such command: fly"):
        commands.resolve(obj, "fly")


class Hyphenated:
    def do_where(self) -> None: ...

    def do_where_ended(self) -> None: ...

    do_where_ended.alt_names = ("where-ended",)  # type: ignore[attr-defined]


def test_a_prefix_of_a_whole_command_wins_over_its_hyphenated_extensions() -> None:
    obj = Hyphenated()
    assert commands.resolve(obj, "wher") == "do_where"
    assert commands.resolve(obj, "where") == "do_where"
    assert commands.resolve(obj, "where-") == "do_where_ended"
    assert commands.resolve(obj, "where_") == "do_where_ended"


def test_pstree_draws_branches_and_the_last_child() -> None:
    from aiomonitor._render import _graph

    nodes = {1: "main", 2: "a", 3: "b", 4: "c", 5: "d", 6: "e"}
    edges = [(1, 2, "await"), (1, 3, "gather"), (2, 4, "await"), (2, 5, "await"), (3, 6, "await")]
    lines, cycles = _graph.tree_lines(nodes, edges, {})
    assert lines == [
        "main",
        "├─ a  [await]",
        "│  ├─ c  [await]",
        "│  └─ d  [await]",
        "└─ b  [gather]",
        "   └─ e  [await]",
    ]
    assert cycles == []


def test_mapping_by_annotations() -> None:
    obj = Commands()
    assert list(commands.map_args(obj.do_stop, [])) == []
    assert list(commands.map_args(obj.do_stop, ["0x1f"])) == [31]
    assert list(commands.map_args(obj.do_paint, ["blue", "a", "b"])) == [Color.BLUE, "a", "b"]
    with pytest.raises(ArgumentMappingException, match=r"must be Color, got 'green' \(expected one of red, blue\)"):
        list(commands.map_args(obj.do_paint, ["green"]))


def test_help_argument_lists() -> None:
    obj = Commands()
    assert commands.arg_list(obj.do_stop) == "[when]"
    assert commands.arg_list(obj.do_paint) == "color [rest...]"
    assert commands.arg_list(obj.do_status) == ""


def test_shell_like_splitting_and_its_errors() -> None:
    assert commands.split_line('hello "two words" x') == ["hello", "two words", "x"]
    with pytest.raises(CommandError, match="Cannot parse the line"):
        commands.split_line('say "unbalanced')


@given(st.text(max_size=200))
def test_fuzz_lines_only_ever_fail_with_command_errors(line: str) -> None:
    obj = Commands()
    try:
        comm, *args = commands.split_line(line) or [""]
        method = getattr(obj, commands.resolve(obj, comm))
        list(commands.map_args(method, args))
    except CommandError:
        pass


def test_ps_table_fits_the_width_and_keeps_ids_and_names_whole() -> None:
    tasks = [
        TaskSnapshot(
            140000000000000 + i,
            f"name-{i}",
            "pending",
            "coro_" + "y" * 80,
            FrameInfo("/srv/" + "deep/" * 12 + "app.py", i, "f"),
        )
        for i in range(3)
    ]
    columns = _format.ps_columns([TaskColumns.of(tasks)])
    layout = _format.ps_table(False, False, coroutine_adds_nothing=False)
    lines = "".join(_table.table_text(layout, columns, 80)).splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[2].startswith("140000000000000  pending  name-0  …/deep/")
    assert lines[2].endswith("/deep/app.py:0 in f")
    assert lines[-1] == "Hidden to fit 80 columns: Coroutine (-w shows all)"


ANSI_SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("width", [None, 60], ids=["natural", "shrunk"])
def test_coloured_tables_align_like_plain_ones(width: int | None) -> None:
    tasks = [
        TaskSnapshot(10 + i, "task-" + "n" * (5 * i), state, "coro", FrameInfo("/app/" + "d" * 40 + ".py", i, "f"))
        for i, state in enumerate(["pending", "cancelling", "done", "something-odd"])
    ]
    columns = _format.ps_columns([TaskColumns.of(tasks)])
    layout = _format.ps_table(False, False, coroutine_adds_nothing=False)
    plain = "".join(_table.table_text(layout, columns, width, state_column=1)).splitlines()
    coloured = "".join(_table.table_text(layout, columns, width, COLOUR, state_column=1)).splitlines()
    assert [ANSI_SGR.sub("", line) for line in coloured] == plain
    assert coloured[0].startswith("\x1b[1m")  # the heading
    assert "\x1b[32mpending" in coloured[2]
    assert "\x1b[33mcancelling" in coloured[3]
    assert "\x1b[" not in coloured[5]  # an unknown state stays plain
    assert not any("\x1b" in line for line in plain)


def test_only_real_terminals_get_colours() -> None:
    assert style_for_terminal("xterm-256color") is COLOUR
    assert style_for_terminal("DUMB") is PLAIN
    assert style_for_terminal("") is PLAIN
    assert PLAIN.warning("x") == "x" and COLOUR.warning("x") != "x"


def test_trio_style_parents_indent_children() -> None:
    root = TaskSnapshot(1, "root", "waiting", "main", None)
    child = TaskSnapshot(2, "child", "waiting", "worker", None, parent_id=1)
    grandchild = TaskSnapshot(3, "grandchild", "waiting", "leaf", None, parent_id=2)
    names = _format.ps_columns([TaskColumns.of([root, child, grandchild])])[2]
    assert names == ["root", "  child", "    grandchild"]


def test_the_protocol_package_does_no_io() -> None:
    """_protocol is sans-I/O: no sockets, threads or event loops may creep in."""
    forbidden = {"socket", "threading", "asyncio", "anyio", "trio", "selectors", "select"}
    package = pathlib.Path(importlib.import_module("aiomonitor._protocol").__file__ or "").parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_importing_aiomonitor_does_not_import_trio() -> None:
    import subprocess
    import sys

    code = "import sys, aiomonitor; print('trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


_frames = st.none() | st.builds(FrameInfo, st.text(max_size=30), st.integers(0, 10**6), st.text(max_size=20))
_numbers = st.none() | st.integers(0, 10**12)
_seconds = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1e6)


@given(
    st.lists(
        st.builds(
            TaskSnapshot,
            id=st.integers(0, 2**64),
            name=st.text(max_size=30),
            state=st.sampled_from(["pending", "running", "cancelling", "waiting", "done"]),
            coro=st.text(max_size=30),
            location=_frames,
            parent_id=_numbers,
            created=_frames,
            created_at=st.none() | st.floats(0, 1e6),
            creator_id=_numbers,
            steps=_numbers,
            busy=_seconds,
            longest_step=_seconds,
        ),
        max_size=20,
    )
)
def test_ps_j_lines_are_json_dumps_of_the_task_dicts(tasks: list[TaskSnapshot]) -> None:
    """The fast ``ps -j`` encoder writes exactly what ``json.dumps`` would."""
    text = "".join(_json.task_text([TaskColumns.of(tasks[:3]), TaskColumns.of(tasks[3:])], now=1e6))
    assert text == "".join(json.dumps(_json.task(task, now=1e6)) + "\n" for task in tasks)


def test_commands_added_or_removed_later_are_seen() -> None:
    """The command table is memoised per class; a custom command set (or
    removed) after commands ran, on the class or the instance, still counts."""

    class Late:
        def do_first(self) -> None: ...

    obj = Late()
    assert commands.resolve(obj, "first") == "do_first"
    Late.do_second = lambda self: None  # type: ignore[attr-defined]
    assert commands.resolve(obj, "second") == "do_second"
    obj.do_third = lambda: None  # type: ignore[attr-defined]
    assert commands.resolve(obj, "third") == "do_third"
    del obj.do_third  # type: ignore[attr-defined]
    del Late.do_second  # type: ignore[attr-defined]
    with pytest.raises(UnknownCommandException):
        commands.resolve(obj, "second")
    assert list(commands.map_args(obj.do_first, [])) == []
    with pytest.raises(ArgumentMappingException):
        list(commands.map_args(obj.do_first, ["extra"]))
