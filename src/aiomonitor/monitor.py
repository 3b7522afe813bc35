"""The documented API: ``Monitor``, ``start_monitor`` and ``monitor_trio``.

This module owns the Monitor's life cycle, its settings and what it owns (the
backend, the watchdog, the server thread).  The classic command hooks come
from ``_command_loop``, the commands from ``_builtin_commands`` and
``_trace_commands``.  It opens no sockets itself and knows no framework
internals: sockets come from ``_listen``, serving from ``_server``, tasks
from a backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import weakref
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from . import _registry
from ._commands._builtin_commands import BuiltinCommands
from ._commands._command_loop import CommandLoop
from ._commands._context import CommandCall, CommandContext
from ._commands._doctor_commands import DoctorCommands
from ._commands._dump_commands import DumpCommands
from ._commands._trace_commands import TraceCommands
from ._commands._trend_commands import TrendCommands
from ._dump._auto import AutoDumper
from ._dump._bundle import BundleSource, bundle_text
from ._dump._files import DumpDirectory
from ._gil._shared_work import SharedWork
from ._query._audit import AuditTrail
from ._query._cost import MonitorBill
from ._query._doctor_query import CancelMemory
from ._query._series import SeriesSource
from ._query._stalls import DEFAULT_MAX_STALLS, StallRecorder
from ._query._stalls import DEFAULT_THRESHOLD as DEFAULT_STALL_THRESHOLD
from ._query._trend import DEFAULT_INTERVAL as DEFAULT_TREND_INTERVAL
from ._query._trend import TrendRecorder
from ._query._watchdog import LoopWatchdog
from ._server import _listen
from ._server._door import default_allowed_uids
from ._server._repl import ConsoleSpec
from ._server._server_thread import ListenSpec, MonitorServer
from ._server._session import SessionConfig
from ._web._endpoint import WebEndpoint
from .backends import DEFAULT_HOP_TIMEOUT, Backend, asyncio_backend, trio_backend

log = logging.getLogger("aiomonitor")

#: The default host: the monitor binds to localhost only.
MONITOR_HOST = "127.0.0.1"
#: The default monitor port (connect with ``nc``, ``telnet`` or ``python -m aiomonitor``).
MONITOR_PORT = 50101
#: The default port of the in-loop Python console.
CONSOLE_PORT = 50102


class Monitor(CommandLoop, BuiltinCommands, TraceCommands, DoctorCommands, DumpCommands, TrendCommands):
    """A telnet monitor (and Python console) for one running event loop.

    Subclass it to add ``do_<COMMAND>`` methods; inside them, write to
    ``self._sout`` and read ``self._sin``: each resolves to the session that
    typed the command, so concurrent clients never see each other's output.
    Commands run in a worker thread of the monitor (a blocking call in one
    stalls neither the app nor other clients); ``async def`` commands run in
    the monitored loop instead.

    Beyond the classic arguments:

    * ``readonly``: show everything, change nothing.  The console (and its
      port) is off; ``cancel``, ``signal`` and every custom command not
      marked ``@aiomonitor.utils.readonly`` are refused with one line; the
      web API refuses cancel (403) and the page offers none.
    * ``path`` / ``console_path``: listen on unix sockets (mode 0600) instead
      of TCP ports; removed on close.
    * ``password``: asked before anything else on both ports.  Wrong ones
      are answered slowly, more slowly the more there are (see ``_door``).
    * ``allowed_uids``: on a unix socket (``path``), only processes of these
      users get in (default: the app's own user and root); others are
      turned away before the prompt, and the audit trail says so.
    * ``control_password``: with it, the ``password`` (or none, if none is
      set) opens a read-only session, and this one a session with control;
      a read-only session gains control with the ``control`` command.
    * ``max_sessions``: refuse logged-in clients beyond this many (default
      64; None for no limit).
    * ``max_pending_logins`` (8), ``login_timeout`` (10 s),
      ``login_input_limit`` (4096 bytes): how many clients may sit at the
      password prompt at once (past it the oldest is dropped), for how long,
      and how much they may send before the password.
    * ``hop_timeout``: how long a command waits for the monitored loop
      (cancel, console statements) before saying it is blocked.
    * ``write_timeout``: a client that takes no byte for this long loses the
      rest of the answer (a marker line, then the prompt); one that takes
      nothing for as long again is dropped.  A client that reads gets every
      answer whole, however big.
    * ``trace_tasks``: remember where each task was created, by which task
      and who is cancelling it (``ps``, ``where``, ``pstree``).  Off by
      default: it costs a little on every task created (``benchmarks/``).
    * ``max_termination_history``: with ``trace_tasks``, how many ended tasks
      are remembered, with how they ended and who cancelled them (``ended``,
      ``where-ended``).  0, the default, keeps none: the history needs a
      ``__del__`` on every task, which would take tracing past its cost
      budget on a create-and-await benchmark (``benchmarks/``).
    * ``trace_timing``: count each task's steps, busy time and longest step
      (``ps`` columns, ``top busy``); costs a Python call per step.
    * ``stall_threshold``: a loop stuck at least this long (seconds; 0.1 by
      default) is a stall, remembered with the blocking stack and task even
      when no client is connected (``lag``, ``doctor``); None turns the
      recorder off.  ``max_stalls``: how many are remembered (50).
    * ``trend_interval``: the flight recorder's seconds between two censuses
      of the tasks by group and state (5; it waits longer when a census is
      dear), for the last 15 minutes: ``trend``, ``ps --stuck``, ``doctor``'s
      stuck groups.  None turns it off.
    * ``dump_dir``: write a bundle (see ``dump``) into this directory by
      itself, with nobody connected, when the loop has been blocked for
      ``dump_after`` seconds (5; one per incident) and when tasks deadlock;
      at most ``max_dumps`` files (10) are kept there, the oldest removed.
      Needs the stall recorder (``stall_threshold``, on by default).
    * ``port_fallback``: when ``port``, ``console_port`` or ``web_port`` is
      taken (by a sibling worker of a pool that all start from the same
      settings), listen on a free port instead of raising; the log says so,
      and so does the registry entry (``aiomonitor ls -j``: ``taken_ports``).
      Every worker of ``aiomonitor run`` but the first uses it.
    * ``discoverable``: announce this monitor in the per-user registry
      that ``aiomonitor ls`` and ``aiomonitor -P PID`` read (default True;
      see ``_registry``).  The entry holds addresses, never the password.
    * ``web_port``: also serve the web dashboard, its JSON API and
      ``/metrics`` there (0: a free port; None, the default: off; needs
      ``aiomonitor[web]``).  ``web_host`` (default ``host``), ``web_token``
      (default: random per start), ``web_metrics_public``: see ``web_url``
      and the documentation.  ``web_control_token``: when set, only it may
      cancel, and ``web_token`` only reads.
    * ``backend``: monitor something other than an asyncio loop (see
      ``monitor_trio``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        host: str | None = MONITOR_HOST,
        port: int = MONITOR_PORT,
        console_port: int = CONSOLE_PORT,
        console_enabled: bool = True,
        locals: dict[str, Any] | None = None,  # noqa: A002 - the documented name
        readonly: bool = False,
        path: str | None = None,
        console_path: str | None = None,
        password: str | None = None,
        control_password: str | None = None,
        allowed_uids: Iterable[int] | None = None,
        max_sessions: int | None = 64,
        max_pending_logins: int = 8,
        login_timeout: float = 10.0,
        login_input_limit: int = 4096,
        hop_timeout: float = DEFAULT_HOP_TIMEOUT,
        write_timeout: float = 30.0,
        trace_tasks: bool = False,
        max_termination_history: int = 0,
        trace_timing: bool = False,
        stall_threshold: float | None = DEFAULT_STALL_THRESHOLD,
        max_stalls: int = DEFAULT_MAX_STALLS,
        discoverable: bool = True,
        port_fallback: bool = False,
        trend_interval: float | None = DEFAULT_TREND_INTERVAL,
        dump_dir: str | os.PathLike[str] | None = None,
        dump_after: float = 5.0,
        max_dumps: int = 10,
        web_port: int | None = None,
        web_host: str | None = None,
        web_token: str | None = None,
        web_control_token: str | None = None,
        web_metrics_public: bool = False,
        backend: Backend | None = None,
    ) -> None:
        self._host = host or MONITOR_HOST
        self._port = port
        self._console_port = console_port
        # A read-only monitor has no console (nor its port); the context
        # carries ``readonly`` to the commands and the web.
        self._console_enabled = console_enabled and not readonly
        self._locals = locals
        self._path = path
        self._console_path = console_path
        self._config = SessionConfig(
            password=password,
            control_password=control_password,
            allowed_uids=default_allowed_uids() if allowed_uids is None else frozenset(allowed_uids),
            hop_timeout=hop_timeout,
            write_timeout=write_timeout,
            max_sessions=max_sessions,
            max_pending_logins=max_pending_logins,
            login_timeout=login_timeout,
            login_input_limit=login_input_limit,
        )
        self._hop_timeout = hop_timeout
        if backend is None:
            backend = asyncio_backend(
                loop, trace=trace_tasks, history_size=max_termination_history, timing=trace_timing
            )
        self._backend = backend
        self._backend.hop_timeout = hop_timeout
        self._loop = loop
        self._watchdog = self._watchdog_for(backend)
        self._stall_recorder = self._stall_recorder_for(
            backend, stall_threshold if stall_threshold is not None else DEFAULT_STALL_THRESHOLD, max_stalls
        )
        self._records_stalls = stall_threshold is not None
        self._trend = self._trend_recorder_for(backend, trend_interval) if trend_interval is not None else None
        self._bill = MonitorBill()
        self._discoverable = discoverable
        self._port_fallback = port_fallback
        #: Listener -> the port asked for, for those that were taken (``port_fallback``).
        self._taken_ports: dict[str, int] = {}
        self._registration: _registry.Registration | None = None
        self._server: MonitorServer | None = None
        self._unix_paths: list[str] = []
        self._started = False
        self._closed = False
        # Per instance, so two monitors in one process never share sessions.
        #: Who changed what, in every face of this monitor.
        self._audit_trail = AuditTrail()
        self._call_var: ContextVar[CommandCall | None] = ContextVar(f"aiomonitor_call_{id(self)}", default=None)
        cancel_memory = CancelMemory()
        self._context = CommandContext(
            backend=backend,
            watchdog=self._watchdog,
            stall_recorder=self._stall_recorder,
            cancel_memory=cancel_memory,
            clients=lambda: [conn.client for conn in self._server.connections()] if self._server is not None else [],
            console_enabled=self._console_enabled,
            readonly=readonly,
            audit=self._audit_trail,
            ask_for_control=lambda host, offered: (
                self._server is not None and self._server.ask_for_control(host, offered)
            ),
            hop_timeout=hop_timeout,
            shared_work=SharedWork(),
            trace_history=max_termination_history,
            trend=self._trend,
            bill=self._bill,
            bundles=BundleSource(
                backend,
                self._stall_recorder,
                self._records_stalls,
                self._watchdog,
                cancel_memory,
                {  # what a bundle says of this monitor: its settings, never a secret
                    "host": self._host,
                    "port": port,
                    "console_port": console_port if self._console_enabled else None,
                    "path": path,
                    "readonly": readonly,
                    "password": password is not None,
                    "control_password": control_password is not None,
                    "trace_tasks": trace_tasks,
                    "max_termination_history": max_termination_history,
                    "trace_timing": trace_timing,
                    "stall_threshold": stall_threshold,
                    "max_stalls": max_stalls,
                    "web_port": web_port,
                    "dump_dir": None if dump_dir is None else os.fspath(dump_dir),
                    "trend_interval": trend_interval,
                },
                self._trend,
            ),
            recorded=self._recorded_process(),
        )
        self._web = WebEndpoint(
            web_port, web_host, web_token, web_metrics_public, self._context, self._records_stalls, web_control_token
        )
        self._auto_dumps: AutoDumper | None = None
        if dump_dir is not None:
            if stall_threshold is None:
                raise ValueError("dump_dir needs the stall recorder: leave stall_threshold on")
            bundles = self._context.bundles
            assert bundles is not None
            self._auto_dumps = AutoDumper(
                backend,
                self._stall_recorder,
                DumpDirectory(dump_dir, max_dumps),
                lambda: bundle_text(bundles),
                dump_after,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._host}:{self._port}>"

    def _watchdog_for(self, backend: Backend) -> LoopWatchdog:
        """What tells how responsive the loop is (a bundle's replays its record)."""
        return LoopWatchdog(backend)

    def _trend_recorder_for(self, backend: Backend, interval: float) -> TrendRecorder:
        """The flight recorder (a bundle's replays its record)."""
        return TrendRecorder(backend, interval)

    def _recorded_process(self) -> dict[str, Any] | None:
        """The process a bundle was taken of (``pid``, ``program``, ``taken``), or None when live."""
        return None

    def _stall_recorder_for(self, backend: Backend, threshold: float, max_stalls: int) -> StallRecorder:
        """What remembers the loop's stalls (a bundle's replays its record)."""
        return StallRecorder(backend, threshold, max_stalls)

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Bind the ports and start the server thread.

        Raises ``OSError`` at once if a port is taken; nothing is left running.
        """
        if self._closed:
            raise RuntimeError("this Monitor was closed; create a new one")
        if self._started:
            raise RuntimeError("this Monitor is already started")
        listeners, web_sock = self._bind()  # (web_sock: the dashboard's socket, if on)
        self._server = MonitorServer(
            self, self._config, listeners, self._watchdog, name="aiomonitor-server", audit=self._audit_trail
        )
        if web_sock is not None:
            web = self._web.listener(web_sock, self._server.run_in_worker, self._config.write_timeout)
            self._server.host_web(web)
        self._server.start()
        # A child forked without exec must not keep our sockets: it would hold
        # the port after the parent closes, and answer nobody.  The hook can't
        # be unregistered; through a weak reference it is a no-op once we are gone.
        after_fork = weakref.WeakMethod(self._after_fork_in_child)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) is not None and method())
        self._backend.attach()
        if self._records_stalls:
            self._stall_recorder.on_lag_second(self._bill.maybe_sample_cpu)
            self._stall_recorder.start()
        if self._trend is not None:
            self._trend.start()
        if self._auto_dumps is not None:
            self._auto_dumps.start()
        self._started = True
        for spec in listeners:
            log.info("aiomonitor: listening on %s", _listen.describe(spec.sock))
        if self._discoverable:
            self._register()

    def _register(self) -> None:
        """Announce this monitor for ``aiomonitor ls``; a failure costs only that."""
        address = _registry.Address.of
        entry = _registry.this_process(
            framework=self._backend.framework,
            monitor=address(self._host, self._port, self._path),
            console=address(self._host, self._console_port, self._console_path) if self._console_enabled else None,
            password=self._config.password is not None,
            prompt=self.prompt,
            taken_ports=tuple(self._taken_ports.items()),
        )
        self._registration = _registry.announce(entry)

    def _bind(self) -> tuple[list[ListenSpec], socket.socket | None]:
        listeners: list[ListenSpec] = []
        try:
            listeners.append(ListenSpec(self._bind_one(self._path, self._port, console=False), console_only=False))
            if self._console_enabled:
                sock = self._bind_one(self._console_path, self._console_port, console=True)
                listeners.append(ListenSpec(sock, console_only=True))
            web_sock = self._web.bind(self._host, fallback=self._port_fallback)
        except BaseException:
            for spec in listeners:
                spec.sock.close()
            self._remove_unix_paths()
            raise
        if self._web.taken_port is not None:
            self._taken_ports["web"] = self._web.taken_port
        return listeners, web_sock

    def _bind_one(self, path: str | None, port: int, *, console: bool) -> socket.socket:
        if path:
            sock = _listen.bind_unix(path)
            self._unix_paths.append(path)
            return sock
        sock, fell_back = _listen.bind_tcp_or_free(self._host, port, fallback=self._port_fallback)
        if fell_back:
            self._taken_ports["console" if console else "monitor"] = port
        if console:
            self._console_port = sock.getsockname()[1]
        else:
            self._port = sock.getsockname()[1]
        return sock

    def close(self) -> None:
        """Disconnect clients, free the ports and join the thread (idempotent).

        From inside a command it only schedules the shutdown, which completes
        once the command returns.
        """
        if self._closed:
            return
        self._closed = True
        if self._registration is not None:
            self._registration.withdraw()
        self._stall_recorder.stop()
        if self._auto_dumps is not None:
            self._auto_dumps.stop()
        if self._trend is not None:
            self._trend.stop()
        if self._server is not None:
            self._server.stop()
            self._backend.detach()
        self._remove_unix_paths()

    def _after_fork_in_child(self) -> None:
        """In a forked child: no monitor.  Its copies of our sockets are closed,
        and the parent's unix socket paths are left for the parent to remove."""
        if self._server is None or self._closed:
            return
        self._closed = True
        self._unix_paths.clear()
        self._stall_recorder.forget_thread_in_child()
        if self._auto_dumps is not None:
            self._auto_dumps.forget_thread_in_child()
        if self._trend is not None:
            self._trend.forget_thread_in_child()
        self._server.close_sockets_in_child()

    def _remove_unix_paths(self) -> None:
        while self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(self._unix_paths.pop())

    @property
    def closed(self) -> bool:
        """Whether the monitor was closed; a closed Monitor cannot be started again."""
        return self._closed

    @property
    def port(self) -> int:
        """The monitor's TCP port (the real one if 0 was asked for)."""
        return self._port

    @property
    def console_port(self) -> int:
        """The console's TCP port (the real one if 0 was asked for)."""
        return self._console_port

    @property
    def web_port(self) -> int | None:
        """The web dashboard's TCP port (the real one once started), or None."""
        return self._web.port

    @property
    def web_url(self) -> str | None:
        """The dashboard's address with its token (a secret), once started; None when off."""
        return self._web.url(self._host)

    def __enter__(self) -> Monitor:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _series_source(self) -> SeriesSource:
        """What the reported series are read from (``aiomonitor.otel``)."""
        return SeriesSource(
            self._backend,
            self._stall_recorder,
            self._records_stalls,
            lambda: len(self._server.connections()) if self._server is not None else 0,
            self._bill,
        )

    # -- what sessions need beyond the command loop (SessionHost) ---------------

    def console_spec(self) -> ConsoleSpec | None:
        """A fresh console namespace: the framework's module (and on asyncio
        ``loop``), then the app's ``locals``."""
        if not self._console_enabled:
            return None
        namespace = self._backend.console_namespace()
        namespace.update(self._locals or {})
        return ConsoleSpec(
            namespace, self._backend.framework, self._backend.submit, self._hop_timeout, self._audit_trail
        )


def start_monitor(
    loop: asyncio.AbstractEventLoop | None = None,
    monitor: type[Monitor] = Monitor,
    host: str | None = None,
    port: int = MONITOR_PORT,
    console_port: int = CONSOLE_PORT,
    console_enabled: bool = True,
    locals: dict[str, Any] | None = None,  # noqa: A002 - the documented name
    **options: Any,
) -> Monitor:
    """Create a *monitor* for *loop* and start it; use it as a context manager.

    Extra keyword *options* go to the Monitor (``path``, ``password``, ...).
    """
    instance = monitor(
        loop,
        host=host,
        port=port,
        console_port=console_port,
        console_enabled=console_enabled,
        locals=locals,
        **options,
    )
    instance.start()
    return instance


@contextlib.contextmanager
def monitor_trio(
    *,
    monitor: type[Monitor] = Monitor,
    host: str | None = None,
    port: int = MONITOR_PORT,
    console_port: int = CONSOLE_PORT,
    console_enabled: bool = True,
    locals: dict[str, Any] | None = None,  # noqa: A002 - the documented name
    cancellable_tasks: bool = False,
    trace_tasks: bool = False,
    max_termination_history: int = 0,
    trace_timing: bool = False,
    **options: Any,
) -> Iterator[Monitor]:
    """Monitor the trio run this is called from: ``with monitor_trio(): ...``.

    ``cancel`` stops one task alone, whenever it was spawned, without a cost
    per spawn (see the trio backend's ``_trio_cancel``).  *cancellable_tasks*
    instead gives each task spawned from now on a cancel scope of its own,
    trio's public way (a few microseconds per spawn, ~2x on a spawn-heavy
    benchmark).  Requires ``aiomonitor[trio]``.
    """
    try:
        backend = trio_backend(
            cancellable_tasks=cancellable_tasks,
            trace=trace_tasks,
            history_size=max_termination_history,
            timing=trace_timing,
        )
    except ImportError as exc:
        raise ImportError("monitor_trio() needs trio: pip install 'aiomonitor[trio]'") from exc
    try:
        with monitor(  # the Monitor detaches the backend when it closes
            None,
            host=host,
            port=port,
            console_port=console_port,
            console_enabled=console_enabled,
            locals=locals,
            backend=backend,
            **options,
        ) as instance:
            yield instance
    finally:
        backend.detach()  # also when the Monitor never started
