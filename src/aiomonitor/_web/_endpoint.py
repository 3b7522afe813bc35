"""One Monitor's web dashboard: its settings, its socket, its address and token.

Kept apart from ``monitor`` so that nothing of the web (h11,
prometheus_client) is imported unless ``web_port`` is set: the core needs
anyio only, and ``aiomonitor[web]`` is an extra.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import secrets
import socket
import urllib.parse
from typing import TYPE_CHECKING

from .. import _registry
from .._server import _listen

if TYPE_CHECKING:
    from .._commands._context import CommandContext
    from ._listener import RunInWorker, WebListener

log = logging.getLogger("aiomonitor")

#: Random bytes in a generated token (24 characters of URL-safe base64).
TOKEN_BYTES = 18
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=-]+")


class WebEndpoint:
    """The settings of ``Monitor(web_port=…)``; :meth:`bind` at start, then the address."""

    def __init__(
        self,
        port: int | None,
        host: str | None,
        token: str | None,
        metrics_public: bool,
        context: CommandContext,
        records_stalls: bool,
        control_token: str | None = None,
    ) -> None:
        if port is not None:
            require_web_extra()
        for name, value in (("web_token", token), ("web_control_token", control_token)):
            if value is not None and not TOKEN_CHARACTERS.fullmatch(value):
                # It travels in a header, a URL and a cookie: RFC 6750's token68 fits all three.
                raise ValueError(f"{name} must be letters, digits and -._~+/= only, and not empty")
        if control_token is not None and control_token == token:
            raise ValueError("web_control_token must differ from web_token")
        self._control_token = control_token
        self.port = port
        #: The port asked for, when it was taken and a free one used instead.
        self.taken_port: int | None = None
        self._host = host
        self._token_setting = token
        self.token: str | None = None
        self._metrics_public = metrics_public
        self._listener: WebListener | None = None
        self._context = context
        self._records_stalls = records_stalls

    def bind(self, default_host: str, *, fallback: bool = False) -> socket.socket | None:
        """Bind the port and pick this start's token; None when off.

        ``OSError`` if the port is taken, unless *fallback* (then a free one,
        and ``taken_port`` says which was asked for).
        """
        if self.port is None:
            return None
        host = self._host or default_host
        sock, fell_back = _listen.bind_tcp_or_free(host, self.port, fallback=fallback)
        if fell_back:
            self.taken_port = self.port
        self.port = sock.getsockname()[1]
        self.token = self._token_setting or secrets.token_urlsafe(TOKEN_BYTES)
        if not _listen.is_loopback(host):
            log.warning(
                "aiomonitor: the web dashboard on %s:%d is plain HTTP reachable from other machines: "
                "its token travels unencrypted; put it behind TLS or keep it on 127.0.0.1.",
                host,
                self.port,
            )
        log.info("aiomonitor: web dashboard on %s:%d", host, self.port)
        return sock

    def url(self, default_host: str) -> str | None:
        if self.token is None or self.port is None:
            return None
        host = _registry.Address(self._host or default_host, self.port).connectable_host()
        host = f"[{host}]" if ":" in host else host
        # Quoted: a chosen token may hold "+", which a query would read as a space.
        return f"http://{host}:{self.port}/?token={urllib.parse.quote(self.token, safe='')}"

    def connection_count(self) -> int:
        return self._listener.connection_count() if self._listener is not None else 0

    def listener(self, sock: socket.socket, run_in_worker: RunInWorker, write_timeout: float) -> WebListener:
        """The web app, assembled once, on the listener that serves it from *sock*.

        *run_in_worker* is the server's worker pool (``MonitorServer.run_in_worker``).
        """
        from .._query._series import SeriesSource
        from ._listener import WebListener
        from ._metrics import Metrics
        from ._routes import WebApp, WebSettings

        context = self._context

        def sessions() -> int:
            return len(context.clients()) + self.connection_count()

        assert self.token is not None
        settings = WebSettings(
            self.token,
            self._metrics_public,
            self._records_stalls,
            self.connection_count,
            readonly=context.readonly,
            control_token=self._control_token,
        )
        metrics = Metrics(
            SeriesSource(context.backend, context.stall_recorder, self._records_stalls, sessions, context.bill)
        )
        self._listener = WebListener(sock, WebApp(context, settings, run_in_worker, metrics).handle, write_timeout)
        return self._listener


def require_web_extra() -> None:
    """A clear error at construction when ``aiomonitor[web]`` is missing."""
    missing = [name for name in ("h11", "prometheus_client") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"web_port needs {' and '.join(missing)}: pip install 'aiomonitor[web]'", name=missing[0])
