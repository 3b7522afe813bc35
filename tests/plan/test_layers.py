"""The package's plan, checked from its source: the wings and who may import whom.

Every module sits in one wing (a folder, or one of the few modules on top),
and the wing table says which wings each may import.  Read top to bottom it
is one stack: the client, the launchers, OpenTelemetry's face, the monitor, the web, the server,
the commands, the renderers, the query layer, the backends and the registry,
and on the ground the GIL etiquette, the protocol, ``utils`` and the version.
No import runs from a lower wing to a higher one, and no import cycle exists
anywhere under ``src/`` (imports inside functions and under ``TYPE_CHECKING``
count too).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
from collections.abc import Iterator

import pytest

import aiomonitor
import aiomonitor.backends

PACKAGE = pathlib.Path(aiomonitor.__file__).parent

#: wing -> the wings it may import (itself always).
WING_TABLE: dict[str, set[str]] = {
    "face": {"monitor", "_client", "utils", "_version"},
    "_client": {"_launch", "_registry", "_render", "_version"},
    "_launch": {"otel", "monitor", "_dump", "_query", "_registry", "backends", "_version"},
    "otel": {"monitor", "_query", "_gil", "_registry", "_version"},
    "pytest_plugin": {"_launch", "_dump", "_render", "_query", "backends", "_gil"},
    "monitor": {
        "_web",
        "_server",
        "_commands",
        "_dump",
        "_render",
        "_query",
        "backends",
        "_registry",
        "_gil",
        "_protocol",
    },
    "_web": {"_server", "_commands", "_dump", "_render", "_query", "backends", "_registry", "_gil", "_version"},
    "_server": {"_commands", "_render", "_query", "backends", "_gil", "_protocol"},
    "_commands": {"_dump", "_render", "_query", "backends", "_gil", "_protocol", "utils"},
    "_dump": {"_render", "_query", "backends", "_registry", "_gil", "_version"},
    "_render": {"_query", "backends", "_gil"},
    "_query": {"backends", "_gil"},
    "backends": {"_gil"},
    "_registry": {"_version"},
    "_gil": set(),
    "_protocol": set(),
    "utils": set(),
    "_version": set(),
}
#: The modules on top, by wing; every other module is in the folder its wing is named after.
TOP = {
    "__init__": "face",
    "__main__": "face",
    "cli": "face",
    "utils": "utils",
    "_version": "_version",
    "monitor": "monitor",
    "otel": "otel",
    "pytest_plugin": "pytest_plugin",
    "_registry": "_registry",
}


def modules() -> Iterator[tuple[str, pathlib.Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [part for part in path.relative_to(PACKAGE).with_suffix("").parts if part != "__init__"]
        yield ".".join(["aiomonitor", *parts]), path


def wing_of(module: str) -> str | None:
    parts = module.split(".")[1:]
    if not parts:
        return "face"
    if len(parts) == 1:
        return TOP.get(parts[0]) if parts[0] in TOP else (parts[0] if parts[0] in WING_TABLE else None)
    return parts[0] if parts[0] in WING_TABLE else None


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute names of the modules *path* imports (relative imports resolved)."""
    module = "aiomonitor." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if path.name == "__init__.py":
        package = module.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
                names.update(f"{base}.{alias.name}" for alias in node.names)  # "from . import _format"
            names.add(base)
    return names


def internal_imports(path: pathlib.Path) -> set[str]:
    """The aiomonitor modules *path* imports (names imported from a module dropped)."""
    known = {name for name, _ in modules()}
    found = set()
    for name in imported_modules(path):
        while name.startswith("aiomonitor") and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("aiomonitor."):  # (the bare package: the parent of "from .. import _x")
            found.add(name)
    return found


def test_the_resolver_sees_relative_imports() -> None:
    """Guards the checks below: a resolver that found nothing would pass them all."""
    found = internal_imports(PACKAGE / "_commands" / "_builtin_commands.py")
    assert "aiomonitor._query._queries" in found
    assert "aiomonitor.backends" in found


def test_every_module_is_in_a_wing() -> None:
    stray = [name for name, _ in modules() if wing_of(name) is None]
    assert not stray, f"in no wing: {stray}"


def test_few_modules_stand_on_top() -> None:
    on_top = [path.name for path in PACKAGE.glob("*.py")]
    assert len(on_top) <= 10, on_top


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=[name for name, _ in modules()])
def test_imports_follow_the_wing_table(module: str, path: pathlib.Path) -> None:
    wing = wing_of(module)
    assert wing is not None
    for name in internal_imports(path):
        other = wing_of(name)
        assert other == wing or other in WING_TABLE[wing], f"{module} ({wing}) imports {name} ({other})"


def test_the_wing_table_is_one_stack() -> None:
    """No wing may import, through the table, a wing that may import it."""

    def reach(wing: str, seen: set[str]) -> set[str]:
        for other in WING_TABLE[wing] - seen:
            seen.add(other)
            reach(other, seen)
        return seen

    for wing in WING_TABLE:
        assert wing not in reach(wing, set()), f"{wing} can reach itself"


def test_no_import_cycle_anywhere() -> None:
    graph = {name: internal_imports(path) - {name} for name, path in modules()}
    # A package's __init__ that only names its folder is no edge back: every module imports its package.
    for name in graph:
        graph[name] = {other for other in graph[name] if not name.startswith(other + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(other) :], other]))
            if other not in state:
                visit(other, [*path, other])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_client_side_never_imports_the_monitor() -> None:
    """``aiomonitor ls``, ``-P`` and ``-c`` talk to monitors over sockets only:
    nothing of the server, the commands or a framework comes with them.  Only
    ``run`` and ``attach`` start a monitor, and ``_cli`` imports them lazily
    (and ``_follow``, to keep a client a service started from being followed);
    of the renderers, only the pure text tables (``ls`` follows their rule)."""
    allowed = {"aiomonitor._registry", "aiomonitor._version", "aiomonitor._render._table", "aiomonitor._render._style"}
    for path in (PACKAGE / "_client").glob("*.py"):
        extra = {"aiomonitor._launch._run", "aiomonitor._launch._attach", "aiomonitor._launch._follow"}
        extra |= {"aiomonitor._launch._open"}
        extra = extra if path.name == "_cli.py" else set()
        for name in internal_imports(path):
            assert name.startswith("aiomonitor._client") or name in allowed | extra, f"{path.name} imports {name}"
        for name in imported_modules(path):
            assert name not in {"asyncio", "trio", "anyio"}, f"{path.name} imports {name}"


@pytest.mark.parametrize("module", ["_queries", "_locations", "_selection", "_groups"])
def test_the_query_layer_knows_no_text_telnet_json_or_http(module: str) -> None:
    forbidden = {"json", "http", "socket"}
    for name in imported_modules(PACKAGE / "_query" / f"{module}.py"):
        assert name not in forbidden and not name.startswith(("aiomonitor._render", "aiomonitor._server")), name


def test_connections_know_no_commands_consoles_or_frameworks() -> None:
    for name in imported_modules(PACKAGE / "_server" / "_connection.py"):
        assert not name.startswith(("aiomonitor.backends", "aiomonitor._server._console", "aiomonitor._server._repl"))
        assert name not in {"asyncio", "trio", "aiomonitor.monitor"}, name


def test_the_backend_interface_names_no_gil_helper() -> None:
    import aiomonitor._gil._passes as passes

    helpers = {name for name in dir(passes) if not name.startswith("_")}
    assert not helpers & set(aiomonitor.backends.__all__)


@pytest.mark.parametrize("module", [aiomonitor, aiomonitor.backends])
def test_all_is_a_tuple_of_names_that_resolve(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert isinstance(names, tuple)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(module, name) is not None, name


def test_no_module_grows_past_600_lines() -> None:
    """Modules with one job each: cohesion decides a split, and a module this long is doing two."""
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 600, f"{path.relative_to(PACKAGE)} has {lines} lines"


def test_the_backend_factory_keeps_trio_out_until_asked() -> None:
    import subprocess
    import sys

    code = "import sys, aiomonitor.backends as b; b.asyncio_backend; print('trio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False\n"
    assert importlib.import_module("aiomonitor.backends").trio_backend.__module__ == "aiomonitor.backends"


def test_a_connection_hands_commands_a_small_client_state() -> None:
    """The connection keeps its wire, its tasks and its login budget; what
    commands read of a client is one ClientState, not the connection."""
    tree = ast.parse((PACKAGE / "_server" / "_connection.py").read_text())
    (connection,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Connection"]
    init = next(n for n in connection.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    attributes = {
        target.attr
        for node in ast.walk(init)
        for target in (node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    attributes |= {
        element.attr
        for node in ast.walk(init)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Tuple)
        for element in target.elts
        if isinstance(element, ast.Attribute)
    }
    assert "client" in attributes
    assert len(attributes) <= 15, sorted(attributes)


def test_the_door_owns_its_words() -> None:
    """The password prompt is written once on the server side, and the token checked from one function."""
    server_text = "".join(path.read_text() for path in (PACKAGE / "_server").glob("*.py"))
    assert server_text.count('"Password: "') == 1
    web_text = "".join(path.read_text() for path in (PACKAGE / "_web").glob("*.py"))
    assert web_text.count("check_token(") == 2  # its definition, and the one call


REPOSITORY = PACKAGE.parent.parent


def test_the_tests_mirror_the_wings() -> None:
    """Unit tests under tests/<wing>/, real sockets and processes under
    tests/scenarios/, what they share under tests/support/: nothing loose."""
    loose = sorted(path.name for path in (REPOSITORY / "tests").glob("*.py"))
    assert loose == ["__init__.py", "conftest.py"]
    assert (REPOSITORY / "tests" / "scenarios").is_dir() and (REPOSITORY / "tests" / "support").is_dir()


def test_the_benchmarks_import_no_tests() -> None:
    for path in (REPOSITORY / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [name for name in names if name == "tests" or name.startswith("tests.")], path.name
        assert "sys.path" not in path.read_text(), f"{path.name} edits sys.path"
