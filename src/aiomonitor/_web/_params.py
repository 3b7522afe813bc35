"""The web API's parameters and access checks, as pure functions.

Everything a request can carry is read here: the token (header, query or
cookie), the ``Origin`` of a request that changes something, and each
endpoint's query parameters.  A bad value is a :class:`BadParameter` with
a one-line message, which the API answers as a 400 with that message.  No
I/O, no monitor: hypothesis feeds these any strings (``tests/test_web_logic.py``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._query._queries import TASK_SORT_KEYS, TaskQuery, parse_task_id

#: Rows per page when the client does not say, and at most.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: The furthest a page may start (far beyond any real task count).
MAX_OFFSET = 10_000_000
#: Filter words, at most, and their total length.
MAX_FILTER_WORDS = 16
MAX_FILTER_LENGTH = 256
#: The query parameter and cookie that carry the access token.
TOKEN_PARAMETER = "token"  # noqa: S105 - a parameter name, not a secret
TOKEN_COOKIE = "aiomonitor_token"  # noqa: S105 - a cookie name, not a secret


class BadParameter(ValueError):
    """A request parameter the API cannot take; the message is one line for the client."""


class Denied(Exception):
    """No access: 401 when no token came, 403 when a wrong one did (or from a foreign origin)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_token(
    tokens: Sequence[str],
    headers: Mapping[str, str],
    query: Mapping[str, str],
    cookie: str | None = None,
) -> tuple[bool, str]:
    """Raise :class:`Denied` unless the request carries one of *tokens*.

    Accepted as ``Authorization: Bearer <token>``, as the ``token`` query
    parameter, or (only where the caller passes it: the page itself, never
    an API call that changes something) as the cookie.  Returns whether it
    came as the query parameter (the page then sets the cookie), and which.
    """
    offered: list[tuple[str, bool]] = []
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Denied(401, "use 'Authorization: Bearer <token>'")
        offered.append((value.strip(), False))
    if TOKEN_PARAMETER in query:
        offered.append((query[TOKEN_PARAMETER], True))
    if cookie is not None:
        offered.append((cookie, False))
    if not offered:
        raise Denied(401, "a token is required: open monitor.web_url, or send 'Authorization: Bearer <token>'")
    for value, from_query in offered:
        for token in tokens:
            # compare_digest: how long a wrong guess takes says nothing of the token.
            if hmac.compare_digest(value.encode("utf-8", "surrogateescape"), token.encode()):
                return from_query, token
    raise Denied(403, "wrong token")


def check_origin(headers: Mapping[str, str]) -> None:
    """Raise :class:`Denied` if a request that changes something came from another site.

    Browsers send ``Origin`` with every POST; a page on another site posting
    to us sends its own.  Without ``Origin`` (curl, scripts) the token in
    the ``Authorization`` header is what protects, and a browser never adds
    that header to a cross-site request on its own.
    """
    origin = headers.get("origin")
    if origin is None:
        return
    host = headers.get("host", "")
    if origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower()):
        raise Denied(403, f"requests from {origin} are not accepted")


@dataclass(frozen=True)
class TaskPage:
    """``/api/v1/tasks``: which tasks, in which order, which page of them."""

    query: TaskQuery
    offset: int
    limit: int
    #: Groups of alike tasks instead of tasks (``ps -g``): the page is of groups.
    grouped: bool = False


def task_page(params: Mapping[str, str]) -> TaskPage:
    _only(params, {"filter", "sort", "limit", "offset", "all", "group"})
    filters = filter_words(params.get("filter", ""))
    sort = params.get("sort") or None
    if sort is not None and sort not in TASK_SORT_KEYS:
        raise BadParameter(f"sort must be one of {', '.join(TASK_SORT_KEYS)}, not {_shown(sort)}")
    limit = _integer(params, "limit", DEFAULT_PAGE, 0, MAX_PAGE)
    offset = _integer(params, "offset", 0, 0, MAX_OFFSET)
    include_own = _flag(params, "all")
    if _flag(params, "group"):
        if sort is not None:
            raise BadParameter("group lists the largest groups first: it takes no sort")
        return TaskPage(TaskQuery(filters, None, None, include_own), offset, limit, grouped=True)
    # The page is the first offset + limit rows, less the first offset: the
    # backends' fast path (no full snapshot) serves it when nothing filters.
    return TaskPage(TaskQuery(filters, sort, offset + limit, include_own), offset, limit)


@dataclass(frozen=True)
class EndedPage:
    filters: tuple[str, ...]
    offset: int
    limit: int


def ended_page(params: Mapping[str, str]) -> EndedPage:
    _only(params, {"filter", "limit", "offset"})
    return EndedPage(
        filter_words(params.get("filter", "")),
        _integer(params, "offset", 0, 0, MAX_OFFSET),
        _integer(params, "limit", DEFAULT_PAGE, 0, MAX_PAGE),
    )


def no_parameters(params: Mapping[str, str]) -> None:
    _only(params, set())


def tree_parameters(params: Mapping[str, str]) -> bool:
    """Whether to include the monitor's own tasks."""
    _only(params, {"all"})
    return _flag(params, "all")


@dataclass(frozen=True)
class TraceSwitch:
    """``POST /api/v1/trace``: tracing on or off for the tasks created from now on."""

    on: bool
    #: The history's length (None: the monitor's own, else 100).
    history: int | None
    timing: bool


def trace_switch(params: Mapping[str, str]) -> TraceSwitch:
    _only(params, {"on", "history", "timing"})
    if "on" not in params:
        raise BadParameter("say on=1 or on=0")
    on = _flag(params, "on")
    history = _integer(params, "history", -1, 0, 9_999_999)
    if not on and ("history" in params or "timing" in params):
        raise BadParameter("on=0 takes no history or timing")
    return TraceSwitch(on, None if history < 0 else history, _flag(params, "timing"))


def task_id(text: str) -> int:
    """A task id from a URL (decimal, or 0x hex)."""
    number = parse_task_id(text) if text.isascii() and len(text) <= 32 else None
    if number is None or number < 0:
        raise BadParameter(f"a task id is a number, not {_shown(text)}")
    return number


def filter_words(text: str) -> tuple[str, ...]:
    if len(text) > MAX_FILTER_LENGTH:
        raise BadParameter(f"filter is at most {MAX_FILTER_LENGTH} characters")
    words = tuple(text.lower().split())
    if len(words) > MAX_FILTER_WORDS:
        raise BadParameter(f"filter has at most {MAX_FILTER_WORDS} words")
    return words


def _only(params: Mapping[str, str], allowed: set[str]) -> None:
    for name in params:
        if name not in allowed and name != TOKEN_PARAMETER:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadParameter(f"unknown parameter {_shown(name)} (known: {known})")


def _integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise BadParameter(f"{name} must be a whole number from {low} to {high}, not {_shown(text)}")
    value = int(text)
    if not low <= value <= high:
        raise BadParameter(f"{name} must be from {low} to {high}, not {value}")
    return value


def _flag(params: Mapping[str, str], name: str) -> bool:
    text = params.get(name, "")
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise BadParameter(f"{name} must be 1 or 0, not {_shown(text)}")


def _shown(text: str, limit: int = 40) -> str:
    """*text* quoted for a one-line message: printable, and not too long."""
    clipped = text if len(text) <= limit else text[:limit] + "…"
    return repr(clipped)
