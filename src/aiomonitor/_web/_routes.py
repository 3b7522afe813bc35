"""The web dashboard's routes: the page, ``/api/v1/…`` and ``/metrics``.

Each route reads the query layer (``_query``), the same functions the telnet
commands use, and renders with ``_json``, which is also what ``-j`` prints:
a task in the API is the object ``ps -j`` prints for it.  Heavy reads run in
the monitor's worker threads through ``_shared_work.compute`` (one at a
time, shared between identical requests, in a heavy section), never in the
server thread, which keeps answering while a read takes its time and while
the app's loop is blocked.  Nothing here enters the monitored loop except
``cancel``, which waits for the loop at most ``hop_timeout``.

Access (``_web_params``): every route but the static files needs the token.
The page itself also accepts it as a cookie (``SameSite=Strict``,
``HttpOnly``), set when the page is opened with ``?token=``; the page's
script sends the token as ``Authorization: Bearer`` on every API call, and
a POST is refused without that header or with a foreign ``Origin``, so
another site can neither read the API nor make a browser cancel a task.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .._commands._context import CommandContext
from .._commands._trace_commands import RUNTIME_HISTORY
from .._dump._bundle import bundle_text
from .._gil._shared_work import compute
from .._query import _queries as _query
from .._query._doctor_query import diagnose_settled
from .._query._groups import task_groups
from .._render import _json
from .._version import __version__
from ..backends import LoopUnresponsive, NotCancellable, UnknownTask
from . import _params as _web_params
from ._http import Request, Response, error_body
from ._listener import RunInWorker
from ._metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ._metrics import Metrics
from ._params import BadParameter, Denied

log = logging.getLogger("aiomonitor")

T = TypeVar("T")

#: How long a cancelled task may take to finish before the answer says "still running".
CANCEL_GRACE = 0.5
#: Files of the page, served as they are (no token needed: nothing secret in them).
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class WebSettings:
    token: str
    #: ``/metrics`` without a token (for a scraper that can't send one).
    metrics_public: bool
    records_stalls: bool
    #: The web connections open now (telnet sessions are counted from the context).
    web_connections: Callable[[], int]
    #: A read-only monitor: cancel is refused (403), and the page shows no cancel button.
    readonly: bool = False
    #: When set, only this token may cancel; ``token`` then only reads.
    control_token: str | None = None

    def tokens(self, change: bool) -> tuple[str, ...]:
        """The tokens that may make this request."""
        if self.control_token is None:
            return (self.token,)
        return (self.control_token,) if change else (self.token, self.control_token)

    def may_change(self, token: str) -> bool:
        return not self.readonly and token in self.tokens(change=True)


class WebApp:
    """Answers one request at a time per connection; any number of connections."""

    def __init__(
        self,
        context: CommandContext,
        settings: WebSettings,
        run_in_worker: RunInWorker,
        metrics: Metrics,
    ) -> None:
        self._context = context
        self._settings = settings
        self._run = run_in_worker
        self._metrics = metrics
        self._static = _load_static()
        #: The one route table: (method, path) -> handler.  A path's task id
        #: is the ``{id}`` of its pattern, parsed once (see ``_pattern``).
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "/"): self._page,
            ("GET", "/index.html"): self._page,
            ("GET", "/favicon.ico"): self._favicon,
            ("GET", "/metrics"): self._metrics_text,
            ("GET", "/static/{name}"): self._static_request,
            ("GET", "/api/v1/status"): self._status,
            ("GET", "/api/v1/tasks"): self._tasks,
            ("GET", "/api/v1/tasks/{id}"): self._task,
            ("POST", "/api/v1/tasks/{id}/cancel"): self._cancel_request,
            ("GET", "/api/v1/ended"): self._ended,
            ("GET", "/api/v1/tree"): self._tree,
            ("GET", "/api/v1/lag"): self._lag,
            ("GET", "/api/v1/stalls"): self._stalls,
            ("GET", "/api/v1/sessions"): self._sessions,
            ("GET", "/api/v1/doctor"): self._doctor,
            ("GET", "/api/v1/dump"): self._dump,
            ("GET", "/api/v1/trend"): self._trend,
            ("GET", "/api/v1/trace"): self._trace_state,
            ("POST", "/api/v1/trace"): self._trace_request,
            ("GET", "/api/v1/audit"): self._audit,
        }

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except BadParameter as exc:
            return _error(400, str(exc))
        except Denied as exc:
            return _error(exc.status, str(exc))
        except Exception:  # one request's trouble is a 500, never the server's end
            log.exception("aiomonitor: web request %s %s failed", request.method, request.path)
            return _error(500, "internal error (see the app's log)")

    async def _route(self, request: Request) -> Response:
        """Authorise, then answer from the route table (404 or 405 otherwise).

        Everything under ``/api/v1/`` asks for the token before anything
        else is said about it, even that it does not exist."""
        path, method = request.path, request.method
        pattern = _pattern(path)
        if path.startswith("/api/v1/"):
            try:
                self._authorise(request, change=method == "POST")
            except Denied as exc:
                if method == "POST":  # a change refused: the audit trail says so
                    action = "cancel" if pattern.endswith("/cancel") else f"POST {path[:80]}"
                    target = f"task {path.split('/')[4]}" if pattern.endswith("/cancel") else ""
                    self._context.audit.record(f"web {request.peer}", action, target, f"refused: {exc}")
                raise
        route = self._routes.get((method, pattern))
        if route is not None:
            return await route(request)
        if any(known == pattern for _, known in self._routes):
            if pattern.endswith("/cancel"):
                return _error(405, "cancel is a POST")
            return _error(405, f"{method} is not answered at {path[:80]}")
        return _error(404, f"no such {'API' if path.startswith('/api/v1/') else 'page'}: {path[:80]}")

    def _authorise(
        self, request: Request, *, change: bool = False, control: bool = False, cookie: str | None = None
    ) -> tuple[bool, str]:
        """The one token check (raises :class:`Denied`): whether the token came
        in the query, and which token it was.

        A change counts only the ``Authorization`` header, which a browser
        adds to no cross-site request, and its origin must be ours; the page
        itself also takes its cookie.  *control*: only a token that may change
        things (the audit trail)."""
        headers, query = request.headers, request.query
        if change:
            authorization = headers.get("authorization")
            if authorization is None:
                raise Denied(401, "changes need 'Authorization: Bearer <token>'")
            headers, query = {"authorization": authorization}, {}
        found = _web_params.check_token(self._settings.tokens(change or control), headers, query, cookie)
        if change:
            _web_params.check_origin(request.headers)
        return found

    # -- the page ----------------------------------------------------------------

    async def _page(self, request: Request) -> Response:
        cookie = request.cookie(_web_params.TOKEN_COOKIE)
        try:
            from_query, token = self._authorise(request, cookie=cookie)
        except Denied as exc:
            page = _DENIED_PAGE.format(status=exc.status, message=html.escape(str(exc)))
            return Response(exc.status, page.encode(), "text/html; charset=utf-8")
        backend = self._context.backend
        page = (
            self._static["index.html"]
            .decode()
            .format(
                token=html.escape(token),
                readonly="0" if self._settings.may_change(token) else "1",
                framework=html.escape(backend.framework),
                pid=self._pid(),
                version=html.escape(__version__),
            )
        )
        headers = [("Content-Security-Policy", _CSP), ("X-Frame-Options", "DENY")]
        if from_query:
            # The page's own cookie: a reload or a bookmark of "/" works without the token in the URL.
            cookie_value = f"{_web_params.TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            headers.append(("Set-Cookie", cookie_value))
        return Response(200, page.encode(), "text/html; charset=utf-8", headers)

    async def _favicon(self, request: Request) -> Response:
        """Asked by every browser; we have none to give."""
        return Response(204, b"", "image/x-icon")

    async def _metrics_text(self, request: Request) -> Response:
        if not self._settings.metrics_public:
            self._authorise(request)
        _web_params.no_parameters(request.query)
        body = await self._run(self._metrics.render)
        return Response(200, body, METRICS_CONTENT_TYPE)

    async def _static_request(self, request: Request) -> Response:
        return self._static_file(request.path.removeprefix("/static/"))

    def _static_file(self, name: str) -> Response:
        kind = STATIC_TYPES.get(os.path.splitext(name)[1])
        body = self._static.get(name)
        if kind is None or body is None:
            return _error(404, "no such file")
        return Response(200, body, kind)

    # -- reads -------------------------------------------------------------------

    async def _compute(self, func: Callable[..., T], *args: Any, share: Any = None) -> T:
        work = functools.partial(compute, self._context.shared_work, func, *args, share=share)
        result: T = await self._run(work)
        return result

    async def _status(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        return _json_response(await self._run(self._status_now))

    def _status_now(self) -> dict[str, Any]:
        context = self._context
        status = _query.monitor_status(context.backend, context.watchdog)
        recorder = context.stall_recorder
        return {
            **_json.status(status),
            "pid": self._pid(),
            "recorded": context.recorded,
            "cost": self._cost_now(),
            "version": __version__,
            "stalls": recorder.count if self._settings.records_stalls else None,
            "sessions": len(context.clients()) + self._settings.web_connections(),
        }

    async def _tasks(self, request: Request) -> Response:
        page = _web_params.task_page(request.query)
        key = ("web-tasks", page)
        return _json_response(await self._compute(self._task_page, page, share=key))

    def _task_page(self, page: _web_params.TaskPage) -> dict[str, Any]:
        backend = self._context.backend
        selection = _query.select_tasks(backend, page.query)
        body: dict[str, Any]
        if page.grouped:
            groups = task_groups(selection.chunks())
            now = time.monotonic()
            shown = groups[page.offset : page.offset + page.limit]
            body = {"grouped": True, "group_count": len(groups), "groups": [_json.group(item, now) for item in shown]}
        else:
            rows = [_json.task(task) for index, task in enumerate(selection) if index >= page.offset]
            body = {"timed": backend.timed, "tasks": rows}
        # The counts once the selection has been read through.
        return {
            "total": selection.total,
            "matched": selection.matched,
            "offset": page.offset,
            "limit": page.limit,
            "traced": backend.traced,
            **body,
        }

    async def _task(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        task_id = _task_id_of(request.path)
        try:
            detail = await self._compute(self._task_detail, task_id, share=("web-task", task_id))
        except UnknownTask:
            return _error(404, f"no live task {task_id} (it may have ended)")
        return _json_response(detail)

    def _task_detail(self, task_id: int) -> dict[str, Any]:
        return _json.task_detail(*_query.task_with_detail(self._context.backend, task_id))

    async def _ended(self, request: Request) -> Response:
        page = _web_params.ended_page(request.query)
        try:
            ended = await self._run(_query.ended_tasks, self._context.backend, page.filters)
        except _query.HistoryOff:
            return _error(409, "no ended tasks are kept: start the monitor with max_termination_history > 0")
        newest_first = list(reversed(ended))
        rows = [_json.ended(item) for item in newest_first[page.offset : page.offset + page.limit]]
        return _json_response({"matched": len(ended), "offset": page.offset, "limit": page.limit, "ended": rows})

    async def _tree(self, request: Request) -> Response:
        include_own = _web_params.tree_parameters(request.query)

        def tree_text() -> tuple[bytes, ...]:
            tree = _query.await_tree(self._context.backend, include_own)
            try:
                return tuple(piece.encode() for piece in _json.await_tree(tree))
            finally:
                tree.release()

        pieces = await self._compute(tree_text, share=("web-tree", include_own))
        return Response(200, pieces)

    async def _lag(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        recorder = self._context.stall_recorder
        if not self._settings.records_stalls:
            return _error(409, "the stall recorder is off (stall_threshold=None)")
        return _json_response(
            {
                "threshold": recorder.threshold,
                "now": time.time(),
                "blocked_for": recorder.heartbeat_age(),
                "stalls_total": recorder.count,
                "history": [[round(at, 3), round(peak, 6)] for at, peak in recorder.lag_history()],
            }
        )

    async def _stalls(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        if not self._settings.records_stalls:
            return _error(409, "the stall recorder is off (stall_threshold=None)")
        stalls = _query.recent_stalls(self._context.stall_recorder)
        rows = [_json.stall(stall) for stall in reversed(stalls)]
        return _json_response({"stalls": rows})

    async def _sessions(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        clients = _query.connected_clients(self._context.clients())
        rows = [_json.client(c) for c in clients]
        return _json_response({"sessions": rows, "web_connections": self._settings.web_connections()})

    async def _doctor(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        context = self._context
        bound = functools.partial(compute, context.shared_work)
        result = await self._run(
            diagnose_settled, bound, context.backend, context.stall_recorder, context.cancel_memory, context.trend
        )
        return _json_response(_json.diagnosis(result))

    async def _dump(self, request: Request) -> Response:
        """The whole process as one bundle (``dump``), as a file to save."""
        _web_params.no_parameters(request.query)
        source = self._context.bundles
        if source is None:
            return _error(404, "no dumps from this monitor")
        pieces = await self._compute(lambda: tuple(piece.encode() for piece in bundle_text(source)))
        name = f"aiomonitor-{self._pid()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        return Response(200, pieces, headers=[("Content-Disposition", f'attachment; filename="{name}"')])

    async def _trend(self, request: Request) -> Response:
        """The flight recorder's censuses (409 when it is off)."""
        _web_params.no_parameters(request.query)
        recorder = self._context.trend
        if recorder is None:
            return _error(409, "the flight recorder is off (Monitor(trend_interval=None))")
        return _json_response(await self._run(recorder.to_json))

    def _cost_now(self) -> dict[str, Any] | None:
        """The monitor's own bill, the cheap part (``cost`` has the rest)."""
        bill = self._context.bill
        if bill is None:
            return None
        cpu = bill.cpu()
        worst = bill.worst_stall()
        return {
            "cpu_seconds_last_minute": None if cpu is None else round(cpu[0], 3),
            "cpu_seconds": bill.total_cpu,
            "worst_command_stall": None if worst is None else {"seconds": worst.seconds, "command": worst.command},
            "tracing": self._context.backend.tracing,
        }

    async def _trace_state(self, request: Request) -> Response:
        _web_params.no_parameters(request.query)
        return _json_response(self._tracing())

    def _tracing(self) -> dict[str, Any]:
        backend = self._context.backend
        totals = backend.trace_totals()
        return {
            "tracing": backend.tracing,
            "since": backend.tracing_since,
            "history": backend.history_size if backend.keeps_history else 0,
            "timing": backend.timed,
            "traced_tasks": totals[0] if totals is not None else None,
        }

    async def _trace_request(self, request: Request) -> Response:
        """Tracing on or off for the tasks created from now on (a change: the control token)."""
        switch = _web_params.trace_switch(request.query)
        who, target = f"web {request.peer}", "on" if switch.on else "off"
        if self._settings.readonly:
            self._context.audit.record(who, "trace", target, "refused: this monitor is read-only")
            return _error(403, "trace is disabled: this monitor is read-only")
        history = switch.history if switch.history is not None else self._context.trace_history or RUNTIME_HISTORY
        try:
            await self._run(self._context.backend.retrace, switch.on, history, switch.timing)
        except (LoopUnresponsive, NotImplementedError) as exc:
            self._context.audit.record(who, "trace", target, f"could not: {exc}")
            return _error(409, f"tracing unchanged: {exc}")
        self._context.audit.record(who, "trace", target, "done")
        return _json_response(self._tracing())

    def _pid(self) -> int:
        """The process shown: this one, or the one a bundle was taken of."""
        recorded = self._context.recorded
        return int(recorded["pid"]) if recorded is not None else os.getpid()

    async def _audit(self, request: Request) -> Response:
        """Who changed what: for whoever may change things (the control token, where one is set)."""
        _web_params.no_parameters(request.query)
        self._authorise(request, control=True)
        entries = self._context.audit.entries()
        return _json_response({"entries": [_json.audit_entry(entry) for entry in reversed(entries)]})

    # -- changes -----------------------------------------------------------------

    async def _cancel_request(self, request: Request) -> Response:
        """A cancel, once ``_authorise(change=True)`` let it through."""
        _web_params.no_parameters(request.query)
        task_id = _task_id_of(request.path)
        who = f"web {request.peer}"
        if self._settings.readonly:
            self._context.audit.record(who, "cancel", f"task {task_id}", "refused: this monitor is read-only")
            return _error(403, "cancel is disabled: this monitor is read-only")
        response: Response = await self._run(self._cancel, task_id, who)
        return response

    def _cancel(self, task_id: int, who: str) -> Response:
        """Cancel *task_id* (worker thread), recorded in the audit trail."""
        name = self._context.backend.names_of([task_id]).get(task_id)
        target = f"task {task_id}" + (f" ({name})" if name is not None else "")
        try:
            outcome = self._context.backend.cancel(task_id, CANCEL_GRACE)
        except UnknownTask:
            self._context.audit.record(who, "cancel", target, "no such task")
            return _error(404, f"no live task {task_id} (it may have ended)")
        except (LoopUnresponsive, NotCancellable) as exc:
            self._context.audit.record(who, "cancel", target, f"could not: {exc}")
            return _error(409, f"could not cancel task {task_id}: {exc}")
        ending = "cancelled" if outcome.ending == "cancelled" else outcome.ending or "requested"
        self._context.audit.record(who, "cancel", target, ending if outcome.requested else "already finished")
        return _json_response(
            {
                "task_id": task_id,
                "requested": outcome.requested,
                "finished": outcome.finished,
                "ending": outcome.ending or None,
            }
        )


Route = Callable[[Request], Awaitable[Response]]
_TASKS = "/api/v1/tasks/"


def _pattern(path: str) -> str:
    """*path* as the route table spells it: a task's id and a static file's name as ``{id}`` and ``{name}``."""
    if path.startswith("/static/"):
        return "/static/{name}"
    if path.startswith(_TASKS):
        parts = path[len(_TASKS) :].split("/")
        if len(parts) == 1:
            return _TASKS + "{id}"
        if len(parts) == 2 and parts[1] == "cancel":
            return _TASKS + "{id}/cancel"
    return path


def _task_id_of(path: str) -> int:
    """The task id in a ``/api/v1/tasks/{id}...`` path (``BadParameter`` if it is none)."""
    return _web_params.task_id(path[len(_TASKS) :].split("/")[0])


def _json_response(data: dict[str, Any]) -> Response:
    return Response(200, json.dumps(data).encode())


def _error(status: int, message: str) -> Response:
    return Response(status, error_body(message))


def _load_static() -> dict[str, bytes]:
    """The page's files, read once (they ship inside the package: no CDN, works offline)."""
    folder = importlib.resources.files(__package__) / "_static"
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.is_file()}


#: The page loads only its own script and style, and talks only to us.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_DENIED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aiomonitor: no access</title></head>
<body><h1>aiomonitor: {status}</h1><p>{message}</p>
<p>Open the address <code>monitor.web_url</code> gives (it carries the token), or
<code>aiomonitor ls</code> on the app's host.</p></body></html>
"""
