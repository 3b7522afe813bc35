"""The package's layers, checked from its source: who may import whom.

listeners -> connection -> conversation -> commands -> query layer -> backend.
A lower layer never imports a higher one, so each can be read, tested and
replaced on its own (the web page, metrics and doctor are renderers over the
query layer, beside the text commands).
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import aiomonitor
import aiomonitor.backends

PACKAGE = pathlib.Path(aiomonitor.__file__).parent


def imported_modules(path: pathlib.Path) -> set[str]:
    """Absolute names of the modules *path* imports (relative imports resolved)."""
    module = "aiomonitor." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
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


def test_the_resolver_sees_relative_imports() -> None:
    """Guards the checks below: a resolver that found nothing would pass them all."""
    found = imported_modules(PACKAGE / "_builtin_commands.py")
    assert "aiomonitor._query" in found
    assert "aiomonitor.backends" in found


def test_backends_import_nothing_above_them() -> None:
    for path in (PACKAGE / "backends").glob("*.py"):
        for name in imported_modules(path):
            if name.startswith("aiomonitor"):
                assert name.startswith("aiomonitor.backends"), f"backends/{path.name} imports {name}"


@pytest.mark.parametrize("module", ["_query", "_locations"])
def test_the_query_layer_knows_no_text_telnet_json_or_http(module: str) -> None:
    forbidden = {
        "aiomonitor._format",
        "aiomonitor._style",
        "aiomonitor._json",
        "aiomonitor._graph",
        "aiomonitor._protocol",
        "aiomonitor._streams",
        "aiomonitor._connection",
        "aiomonitor._session",
        "aiomonitor._repl",
        "aiomonitor._server",
        "json",
        "http",
        "socket",
    }
    for name in imported_modules(PACKAGE / f"{module}.py"):
        assert not any(name == f or name.startswith(f + ".") for f in forbidden), f"{module} imports {name}"


@pytest.mark.parametrize("module", ["_builtin_commands", "_trace_commands", "_command_loop", "_context", "_query"])
def test_commands_reach_neither_the_server_nor_a_session(module: str) -> None:
    forbidden = {"aiomonitor._server", "aiomonitor._session", "aiomonitor._connection", "aiomonitor._repl"}
    for name in imported_modules(PACKAGE / f"{module}.py"):
        assert name not in forbidden, f"{module} imports {name}"


def test_connections_know_no_commands_consoles_or_frameworks() -> None:
    for name in imported_modules(PACKAGE / "_connection.py"):
        assert not name.startswith(("aiomonitor.backends", "aiomonitor._console", "aiomonitor._repl")), name
        assert name not in {"asyncio", "trio", "aiomonitor.monitor"}, name


@pytest.mark.parametrize("module", ["_cli", "_client", "_client_telnet", "_oneshot", "_fleet", "_registry"])
def test_the_client_side_never_imports_the_monitor(module: str) -> None:
    """``aiomonitor ls``, ``-P`` and ``-c`` talk to monitors over sockets only:
    nothing of the server, the commands or a framework comes with them.  Only
    ``run`` and ``attach`` start a monitor, and ``_cli`` imports them lazily."""
    # _table and _style: pure text layout, so ``ls`` follows the tables' one rule.
    allowed = {
        "_client",
        "_client_ptk",
        "_client_telnet",
        "_oneshot",
        "_fleet",
        "_registry",
        "_version",
        "_table",
        "_style",
    }
    if module == "_cli":
        allowed |= {"_run", "_attach"}
    for name in imported_modules(PACKAGE / f"{module}.py"):
        if name.startswith("aiomonitor."):
            assert name.split(".")[1] in allowed, f"{module} imports {name}"
        assert name not in {"asyncio", "trio", "anyio"}, f"{module} imports {name}"


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
