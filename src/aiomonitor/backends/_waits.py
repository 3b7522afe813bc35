"""What a suspended task waits for, and who holds it: shared by the backends.

A task's await chain ends in the primitive it is parked on (``Lock.acquire``,
``Event.wait``...): the innermost frame whose code is one of a backend's
known primitive methods names the kind, and its ``self`` is the primitive.

Who *holds* a lock is harder: asyncio's ``Lock`` records no owner.  The
evidence used here is the app's own code: a task whose frame is inside the
body of ``async with <expr>:``, where ``<expr>`` (a name, attributes of one,
or a constant subscript) evaluates to the lock *without running any code of
the app* (no properties, no ``__getitem__`` of app classes), holds it.  The
source is parsed once per function (``ast``), only for frames whose function
has an ``async with`` at all.

Everything here reads suspended frames from a monitor thread; nothing is
called on the app's objects but plain attribute and dict reads.
"""

from __future__ import annotations

import ast
import gc
import inspect
import linecache
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import CodeType, FrameType
from typing import Any, NamedTuple

from ._frames import describe_chain, is_library
from ._records import FrameInfo, Holder
from ._timing import TimedCoroutine

#: A memo bound, as the other per-code memos.
_MEMO_SIZE = 4096
#: A cycle-proof bound on an await chain, as ``_frames``'.
_MAX_CHAIN = 256
_MISSING = object()


class Block(NamedTuple):
    """One ``async with`` in a function: its body's lines and its expression."""

    first_line: int
    last_line: int
    expr: ast.expr
    text: str


_BLOCKS: dict[int, tuple[CodeType, tuple[Block, ...]]] = {}
#: Per source file, its ``async def`` functions' blocks by (name, first
#: line): a file is parsed once, and only this small index is kept, not its
#: syntax tree (an app's modules' trees would be megabytes).
_FILES: dict[str, dict[tuple[str, int], tuple[Block, ...]]] = {}


def async_with_blocks(code: CodeType) -> tuple[Block, ...]:
    """The ``async with`` statements of *code*'s function (memoised per code)."""
    known = _BLOCKS.get(id(code))
    if known is not None:
        return known[1]
    blocks: tuple[Block, ...] = ()
    if code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
        functions = _functions_in(code.co_filename)
        blocks = functions.get((code.co_name, code.co_firstlineno), ())
    if len(_BLOCKS) >= _MEMO_SIZE:
        _BLOCKS.clear()
    _BLOCKS[id(code)] = (code, blocks)  # the entry keeps the code alive: its id is not reused
    return blocks


def _functions_in(filename: str) -> dict[tuple[str, int], tuple[Block, ...]]:
    """(name, first line) -> blocks, for every ``async def`` of the file that has
    an ``async with``; keyed by both the ``def`` line and the first decorator's
    (``co_firstlineno`` is the latter)."""
    known = _FILES.get(filename)
    if known is not None:
        return known
    functions: dict[tuple[str, int], tuple[Block, ...]] = {}
    lines = linecache.getlines(filename)
    try:
        tree = ast.parse("".join(lines)) if lines else None
    except (SyntaxError, ValueError):  # not the source the code came from
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.AsyncFunctionDef):
            blocks = tuple(_blocks_in(node))
            if blocks:
                functions[(node.name, node.lineno)] = blocks
                if node.decorator_list:
                    functions[(node.name, node.decorator_list[0].lineno)] = blocks
    if len(_FILES) >= _MEMO_SIZE:
        _FILES.clear()
    _FILES[filename] = functions
    return functions


def _blocks_in(function: ast.AsyncFunctionDef) -> Iterator[Block]:
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # another function's code, with frames of its own
        if isinstance(node, ast.AsyncWith) and node.body:
            last = node.end_lineno or node.body[-1].lineno
            for item in node.items:
                yield Block(node.body[0].lineno, last, item.context_expr, ast.unparse(item.context_expr))
        pending.extend(ast.iter_child_nodes(node))


def resolve(expr: ast.expr, frame: FrameType) -> Any:
    """The object *expr* names in *frame*, or ``_MISSING``; runs no app code.

    Names, attribute chains read with ``inspect.getattr_static`` (a property
    is not run: it is ``_MISSING``), and constant subscripts of plain dicts,
    lists and tuples.
    """
    if isinstance(expr, ast.Name):
        local_vars = frame.f_locals
        if expr.id in local_vars:
            return local_vars[expr.id]
        return frame.f_globals.get(expr.id, _MISSING)
    if isinstance(expr, ast.Attribute):
        base = resolve(expr.value, frame)
        if base is _MISSING:
            return _MISSING
        try:
            value = inspect.getattr_static(base, expr.attr)
        except AttributeError:
            return _MISSING
        if isinstance(value, types.MemberDescriptorType):  # a __slots__ field: a plain read
            try:
                return value.__get__(base, type(base))
            except AttributeError:
                return _MISSING
        if isinstance(value, (property, types.GetSetDescriptorType)) or hasattr(type(value), "__get__"):
            # Computed on access (or a method): reading it would run code.
            return _MISSING
        return value
    if isinstance(expr, ast.Subscript) and isinstance(expr.slice, ast.Constant):
        base = resolve(expr.value, frame)
        if type(base) is dict:
            return base.get(expr.slice.value, _MISSING)
        if type(base) in (list, tuple) and type(expr.slice.value) is int:
            try:
                return base[expr.slice.value]
            except IndexError:
                return _MISSING
    return _MISSING


def held_in(frames: Iterable[FrameType]) -> Iterator[tuple[Any, FrameInfo, str]]:
    """(object, line, expression) for each ``async with`` whose body these frames are in."""
    for frame in frames:
        blocks = async_with_blocks(frame.f_code)
        if not blocks:
            continue
        here = FrameInfo.from_frame(frame)
        for block in blocks:
            if block.first_line <= here.lineno <= block.last_line:
                obj = resolve(block.expr, frame)
                if obj is not _MISSING:
                    yield obj, here, block.text


def method_codes(methods: Iterable[tuple[type | None, Any, str]]) -> dict[int, tuple[CodeType, str, type | None]]:
    """A *kinds* table for :func:`primitive_in_chain`: each (owning class,
    function, suffix) by id(code), as the other code memos (hashing a code
    hashes its content); functions a Python version lacks (None) are left out."""
    table: dict[int, tuple[CodeType, str, type | None]] = {}
    for owner, function, suffix in methods:
        code = getattr(function, "__code__", None)
        if code is not None:
            table[id(code)] = (code, suffix, owner)
    return table


def primitive_in_chain(
    coro: Any, kinds: Mapping[int, tuple[CodeType, str, type | None]]
) -> tuple[list[FrameType], tuple[str, Any] | None]:
    """The await chain's frames, outermost first (as ``await_chain``), and
    (the method's suffix, the primitive) for its innermost coroutine that
    runs one of *kinds*' methods, or None; one walk for both.

    The primitive (the method's ``self``) is found among what the coroutine
    holds (``gc.get_referents``), not through ``frame.f_locals``: before
    Python 3.13 that makes a dict the frame keeps as long as it lives, and
    100k waiting tasks would each keep one (memory, and a long collection).
    """
    # The walk is ``_frames.await_chain``'s, written out again rather than
    # shared through a generator: both run once per task over 100k tasks.
    frames: list[FrameType] = []
    innermost: tuple[Any, tuple[CodeType, str, type | None]] | None = None
    while coro is not None and len(frames) < _MAX_CHAIN:
        kind = type(coro)
        if kind is TimedCoroutine:
            coro = coro.coro
            continue
        if kind is types.CoroutineType:
            frame, following = coro.cr_frame, None if coro.cr_running else coro.cr_await  # see _chains
        elif kind is types.GeneratorType:
            frame, following = coro.gi_frame, None if coro.gi_running else coro.gi_yieldfrom
        else:
            break
        if frame is None:
            break
        frames.append(frame)
        known = kinds.get(id(frame.f_code))
        if known is not None:
            innermost = (coro, known)
        coro = following
    if innermost is None:
        return frames, None
    holder, (_code, suffix, owner) = innermost
    if owner is None:  # a function (a sleep): nothing to find
        return frames, (suffix, None)
    primitive = next((value for value in _held_values(holder) if isinstance(value, owner)), None)
    if primitive is None:  # ``self`` in a cell: the method has a closure that uses it (trio's Event.wait)
        cells = (value for value in _held_values(holder) if type(value) is types.CellType)
        primitive = next((cell.cell_contents for cell in cells if isinstance(_cell_value(cell), owner)), None)
    return frames, (None if primitive is None else (suffix, primitive))


def _cell_value(cell: types.CellType) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # empty
        return None


def _held_values(coro: Any) -> list[Any]:
    if sys.version_info >= (3, 11):  # the coroutine owns its frame's locals
        return gc.get_referents(coro)
    frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    return [] if frame is None else gc.get_referents(frame)


def type_label(framework: str, obj: Any) -> str:
    """``asyncio.Lock``; an app's subclass keeps its own name (``Pool.Lock``)."""
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return f"{framework}.{cls.__name__}" if module in (framework, "_" + framework) else cls.__qualname__


def holders_by_evidence(
    frames_of_tasks: Iterable[tuple[int, list[FrameType]]], targets: Mapping[int, Any]
) -> dict[int, list[Holder]]:
    """Tasks inside an ``async with`` of one of *targets* (id -> object): inferred holders."""
    found: dict[int, list[Holder]] = {}
    for task_id, frames in frames_of_tasks:
        for obj, here, text in held_in(frames):
            if id(obj) in targets and targets[id(obj)] is obj:
                found.setdefault(id(obj), []).append(Holder(task_id, f"async with {text}", here, True))
    return found


def app_location(frames: list[FrameType]) -> FrameInfo | None:
    """The innermost frame of the app's own code (not a library's), else the
    innermost: ``ps``'s location, with its memo per code."""
    return describe_chain(frames, "")[1]


def binding_of(obj: Any, frames: list[FrameType]) -> str | None:
    """How the app's code names *obj* where it waits: ``lock``, ``self._lock``,
    ``LOCKS`` (a global the code mentions).  Innermost app frame first."""
    for frame in reversed(frames):
        if is_library(frame.f_code.co_filename):
            continue
        local_vars = frame.f_locals
        for name, value in local_vars.items():
            if value is obj:
                return name
        for name, value in local_vars.items():
            attrs = getattr(value, "__dict__", None)  # an instance's own dict: no code runs
            if type(attrs) is dict:
                for attr, attr_value in attrs.items():
                    if attr_value is obj:
                        return f"{name}.{attr}"
        for name in frame.f_code.co_names:
            if frame.f_globals.get(name, _MISSING) is obj:
                return name
    return None


class WaitDescriber:
    """Names and states of waited-on primitives, memoised for one ``waits()``:
    100k tasks waiting on one event need its state once, and its name once
    per piece of code that waits on it (each name costs a read of locals)."""

    def __init__(self, detail_of: Callable[[Any], str]) -> None:
        self._detail_of = detail_of
        self._details: dict[int, str] = {}
        self._bindings: dict[tuple[FrameInfo | None, int], str | None] = {}

    def detail(self, obj: Any) -> str:
        known = self._details.get(id(obj))
        if known is None:
            known = self._details[id(obj)] = self._detail_of(obj)
        return known

    def binding(self, obj: Any, frames: list[FrameType], at: FrameInfo | None) -> str | None:
        """As :func:`binding_of`, once per (the app's line *at*, object)."""
        key = (at, id(obj))
        if key not in self._bindings:
            self._bindings[key] = binding_of(obj, frames)
        return self._bindings[key]
