"""Command-line logic, sans I/O: splitting, name resolution, argument mapping.

The Monitor's documented hooks (``_getcmd``, ``_map_args``, ``precmd``) are
thin wrappers over these functions, so they can be tested without a monitor.
Every error is a :class:`CommandError` whose message is one line for the user.
"""

from __future__ import annotations

import enum
import functools
import inspect
import shlex
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

COMMAND_PREFIX = "do_"


class CommandError(Exception):
    """A problem with what the user typed; ``str(exc)`` is shown to them."""


class UnknownCommandException(CommandError):
    """No command has this name or a name starting with it."""


class MultipleCommandException(CommandError):
    """The prefix matches several commands."""

    def __init__(self, comm: str, cmds: Sequence[CmdName]) -> None:
        self.cmds = list(cmds)
        names = ", ".join(sorted({c.cmd_name for c in self.cmds}))
        super().__init__(f'Ambiguous command "{comm}": could be {names}')


class ArgumentMappingException(CommandError):
    """An argument is missing, extra, or of the wrong type."""


class CmdName(NamedTuple):
    cmd_name: str
    method_name: str


def split_line(line: str) -> list[str]:
    """Split like a shell, so ``name "two words"`` is two arguments."""
    try:
        return shlex.split(line)
    except ValueError as exc:  # unbalanced quotes
        raise CommandError(f"Cannot parse the line: {exc}") from None


def command_names(
    obj: object, *, startswith: str = "", with_alts: bool = True, prefix: str = COMMAND_PREFIX
) -> Iterator[CmdName]:
    """Every method of *obj* named *prefix* + a command (and its aliases) starting with *startswith*."""
    own = tuple(attr for attr in getattr(obj, "__dict__", ()) if attr.startswith(prefix))
    if own:  # commands set on the instance itself: looked up afresh
        table = _command_table_of(obj, prefix)
    else:
        cls: Any = type(obj)  # (hashable, for the memo)
        table = _class_command_table(cls, prefix, tuple(len(vars(c)) for c in cls.__mro__))
    for attr, alts in table:
        name = attr[len(prefix) :]
        if name.startswith(startswith):
            yield CmdName(name, attr)
        if with_alts:
            for alt in alts:
                if alt.startswith(startswith):
                    yield CmdName(alt, attr)


_CommandTable = tuple[tuple[str, tuple[str, ...]], ...]


def _command_table_of(obj: object, prefix: str) -> _CommandTable:
    """(method name, aliases) of each command of *obj*, in name order."""
    attrs = sorted(attr for attr in dir(obj) if attr.startswith(prefix))
    return tuple((attr, tuple(getattr(getattr(obj, attr), "alt_names", ()))) for attr in attrs)


@functools.lru_cache(maxsize=64)
def _class_command_table(cls: type, prefix: str, shape: tuple[int, ...]) -> _CommandTable:
    """``_command_table_of`` for instances of *cls* (without commands of their
    own), memoised: ``dir`` and a ``getattr`` per attribute were a fifth of a
    trivial command's time.  *shape*, the size of each class's namespace
    along the MRO, changes when a command is added to or removed from a
    class (a custom command set after start), which then gets a new table."""
    return _command_table_of(cls, prefix)


def resolve(obj: object, comm: str, prefix: str = COMMAND_PREFIX) -> str:
    """The method name for what the user typed: exact name, alias, or unique prefix."""
    candidates = list(command_names(obj, startswith=comm, prefix=prefix))
    for cand in candidates:
        if cand.cmd_name == comm:
            return cand.method_name
    # A prefix of a whole command wins over the hyphenated commands that
    # extend it: ``wher`` is ``where``, not also ``where-ended``.
    names = {c.cmd_name for c in candidates}
    # (A method name spells the hyphen as an underscore: do_where_ended.)
    candidates = [c for c in candidates if not any(c.cmd_name.startswith((n + "-", n + "_")) for n in names)]
    methods = {c.method_name for c in candidates}
    if not methods:
        raise UnknownCommandException(f"No such command: {comm}")
    if len(methods) > 1:
        raise MultipleCommandException(comm, candidates)
    return methods.pop()


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolvable string annotations: no conversion
        return {}


def _parameters(func: Callable[..., Any]) -> tuple[tuple[inspect.Parameter, ...], dict[str, Any]]:
    """*func*'s parameters and type hints: memoised per function (and
    whether it is bound), as ``inspect.signature`` and ``get_type_hints``
    were a third of a trivial command's time.  A pure memo, bounded."""
    bound = inspect.ismethod(func)
    key = (getattr(func, "__func__", func) if bound else func, bound)
    try:
        found = _PARAMETERS.get(key)
    except TypeError:  # an unhashable callable: not memoised
        return tuple(inspect.signature(func).parameters.values()), _hints(func)
    if found is None:
        if len(_PARAMETERS) >= 256:
            _PARAMETERS.clear()
        found = _PARAMETERS[key] = tuple(inspect.signature(func).parameters.values()), _hints(func)
    return found


_PARAMETERS: dict[tuple[Any, bool], tuple[tuple[inspect.Parameter, ...], dict[str, Any]]] = {}


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def convert(value: str, tp: Any) -> Any:
    """Convert one argument by its annotation; ValueError with a reason if not."""
    tp = _unwrap_optional(tp)
    if tp is bool:
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("expected yes/no")
    if tp is int:
        return int(value, 0)  # 0x... task ids are welcome
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if value.lower() in (member.name.lower(), str(member.value).lower()):
                return member
        raise ValueError("expected one of " + ", ".join(m.name.lower() for m in tp))
    if tp is Any or tp is str or not callable(tp):
        return value
    return tp(value)


def _type_name(tp: Any) -> str:
    tp = _unwrap_optional(tp)
    return getattr(tp, "__name__", str(tp))


def map_args(func: Callable[..., Any], args: Sequence[str]) -> Iterator[Any]:
    """Convert string *args* for *func*'s positional parameters, by annotation."""
    parameters, hints = _parameters(func)
    remaining = list(args)
    for param in parameters:
        tp = hints.get(param.name, Any)
        if param.kind is param.VAR_POSITIONAL:
            while remaining:
                yield _convert_one(func, param.name, remaining.pop(0), tp)
            return
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            continue
        if remaining:
            yield _convert_one(func, param.name, remaining.pop(0), tp)
        elif param.default is param.empty:
            raise ArgumentMappingException(f"Missing argument '{param.name}'. Usage: {_usage(func)}")
    if remaining:
        raise ArgumentMappingException(f"Too many arguments. Usage: {_usage(func)}")


def _convert_one(func: Callable[..., Any], name: str, value: str, tp: Any) -> Any:
    try:
        return convert(value, tp)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ValueError) and "expected" in str(exc) else ""
        detail = f" ({reason})" if reason else ""
        raise ArgumentMappingException(f"Argument '{name}' must be {_type_name(tp)}, got {value!r}{detail}") from exc


def arg_list(func: Callable[..., Any]) -> str:
    """Parameters for help text: ``taskid``, ``[name]``, ``[cmd_names...]``."""
    parts = []
    for param in inspect.signature(func).parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            parts.append(f"[{param.name}...]")
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            parts.append(param.name if param.default is param.empty else f"[{param.name}]")
    return " ".join(parts)


def _usage(func: Callable[..., Any]) -> str:
    name = func.__name__.removeprefix(COMMAND_PREFIX)
    return f"{name} {arg_list(func)}".strip()


def first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc or "").split("\n", 1)[0]
