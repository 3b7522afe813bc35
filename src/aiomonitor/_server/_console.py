"""The Python console's language half: compile input, build what runs in the loop.

Input is read and compiled in the server thread; only the compiled statement
runs in the monitored loop (as a task), so waiting for the user never blocks
the app.  Results and ``print()`` go to the session that typed them, never to
the process-wide ``sys.displayhook`` or ``sys.stdout``.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import inspect
import io
import sys
import traceback
from collections.abc import Awaitable, Callable
from types import CodeType, TracebackType
from typing import Any

from ._stdin_guard import console_statement

FILENAME = "<console>"
_NOTHING = object()
_DISPLAY = "__aiomonitor_display__"


class LeaveConsole(Exception):
    """Raised by the console's ``exit()``/``quit()``: back to the monitor."""


class _Quitter:
    """``exit``/``quit`` for the console.

    The built-in ones close ``sys.stdin`` (the app's!) and raise SystemExit,
    which an asyncio task re-raises out of the app's event loop.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Use {self.name}() or Ctrl-D to leave the console"

    def __call__(self, code: object = None) -> None:
        raise LeaveConsole


class _ClientHelp:
    """``help`` for the console: the text goes to the client.

    The built-in ``help()`` writes to the process's stdout and, without an
    argument, reads the process's stdin through a pager: typed on the console
    it would block the app's loop for good.  ``help(obj)`` and
    ``help("topic")`` render to text here instead.
    """

    def __init__(self, write: Callable[[str], object]) -> None:
        self._write = write

    def __repr__(self) -> str:
        return "Type help(obj) for help about obj (interactive help() is not available here)."

    def __call__(self, request: object = _NOTHING) -> None:
        if request is _NOTHING:
            self._write(repr(self) + "\n")
            return
        # Imported when help is asked: pydoc brings ~330 objects beyond what
        # the monitor imports anyway, which the cyclic collector would walk at
        # every full collection of every app (see "The collector's walks" in
        # docs/benchmarks.md).
        import pydoc

        if isinstance(request, str):
            output = io.StringIO()
            pydoc.Helper(input=io.StringIO(), output=output).help(request)
            self._write(output.getvalue())
            return
        self._write(pydoc.plain(pydoc.render_doc(request, title="Help on %s")))


def _no_stdin(name: str) -> Callable[..., None]:
    """``input``/``breakpoint`` for the console: they would read the app's stdin."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(
            f"{name}() would read the app's standard input and block its event loop; "
            "the console cannot offer it (print what you need, or run a debugger on the app itself)"
        )

    return refuse


class _DisplayExpressions(ast.NodeTransformer):
    """Show the value of each expression statement, as interactive mode does.

    CPython's "single" mode prints every expression statement of the typed
    code, nested blocks included (``for i in range(3): i``), but not those in
    function or class bodies, which are code of their own.
    """

    def visit_Expr(self, node: ast.Expr) -> ast.Expr:
        call = ast.Call(ast.Name(_DISPLAY, ast.Load()), [node.value], [])
        return ast.copy_location(ast.Expr(ast.copy_location(call, node)), node)

    def _skip(self, node: ast.AST) -> ast.AST:
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _skip


def _add_display_calls(tree: ast.Module) -> ast.Module:
    _DisplayExpressions().visit(tree)  # rewrites in place: the module node itself stays
    return ast.fix_missing_locations(tree)


class ConsoleState:
    """One console session: its namespace and the lines typed so far."""

    def __init__(self, namespace: dict[str, Any], write: Callable[[str], object]) -> None:
        self.namespace = namespace
        self._write = write
        self._lines: list[str] = []
        self._compiler = codeop.CommandCompiler()
        self._compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        namespace.setdefault("__name__", "__console__")
        namespace.setdefault("__builtins__", builtins)
        namespace[_DISPLAY] = self._display
        namespace["print"] = self._print
        namespace["exit"] = _Quitter("exit")
        namespace["quit"] = _Quitter("quit")
        namespace["help"] = _ClientHelp(write)
        namespace["input"] = _no_stdin("input")
        namespace["breakpoint"] = _no_stdin("breakpoint")

    @property
    def prompt(self) -> str:
        return "... " if self._lines else ">>> "

    def reset(self) -> None:
        self._lines.clear()

    def push(self, line: str) -> CodeType | None:
        """Add a line; return code to run once the statement is complete.

        Raises SyntaxError (and resets) for invalid input, like the REPL.
        """
        self._lines.append(line)
        source = "\n".join(self._lines)
        try:
            complete = self._compiler(source, FILENAME, "single")
        except (SyntaxError, ValueError, OverflowError):
            self.reset()
            raise
        if complete is None:
            return None
        self.reset()
        tree = ast.parse(source, FILENAME, "exec", type_comments=False)
        code: CodeType = compile(_add_display_calls(tree), FILENAME, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return code

    def statement(self, code: CodeType) -> Callable[[], Awaitable[Any]]:
        """An async function that runs *code* in the monitored loop."""
        namespace = self.namespace
        is_async = bool(code.co_flags & inspect.CO_COROUTINE)

        async def run_statement() -> None:
            try:
                with console_statement():
                    result = eval(code, namespace)  # noqa: S307 - a REPL is the point
                    if is_async:
                        await result
            except (SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
                # Escaping a task, these would stop the app's event loop.
                raise StatementEscaped(exc) from exc

        return run_statement

    def _display(self, value: object) -> None:
        if value is None:
            return
        self.namespace["_"] = value
        self._write(repr(value) + "\n")

    def _print(
        self,
        *args: object,
        sep: str | None = " ",
        end: str | None = "\n",
        file: Any = None,
        flush: bool = False,
    ) -> None:
        if file is not None:  # print(..., file=sys.stderr) and friends: honour it
            builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
            return
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        self._write(sep.join(map(str, args)) + end)


class StatementEscaped(Exception):
    """A statement raised SystemExit/KeyboardInterrupt; carried safely out."""


def format_exception(exc: BaseException) -> str:
    """A traceback as the REPL prints it: starting at the user's own code."""
    if isinstance(exc, StatementEscaped) and exc.__cause__ is not None:
        inner = exc.__cause__
        return f"{type(inner).__name__}{inner.args!r} ignored: it would stop the app (exit() leaves the console)\n"
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc))
    tb = _from_console_frames(exc.__traceback__)
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _from_console_frames(tb: TracebackType | None) -> TracebackType | None:
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != FILENAME:
        start = start.tb_next
    return start if start is not None else tb


def banner(framework: str) -> str:
    version = sys.version.split()[0]
    return (
        f"This console is running in {'an' if framework[:1] in 'aeiou' else 'a'} {framework} event loop:"
        " the monitored app's own.\n"
        f"Python {version}; use top-level await; exit() or Ctrl-D returns; Ctrl-C cancels a statement.\n"
    )
