"""The documented API: ``Monitor``, ``start_monitor`` and ``monitor_trio``.

This module owns the Monitor's life cycle and the classic command hooks
(``precmd``/``postcmd``/``emptyline``/``default``, ``_getcmd``, ``_map_args``,
``_sout``).  It opens no sockets itself and knows no framework internals:
sockets come from ``_listen``, serving from ``_server``, tasks from a backend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import io
import logging
import os
import socket
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TextIO, cast

from . import _listen
from ._builtin_commands import BuiltinCommands
from ._console import ConsoleState
from ._protocol import commands
from ._protocol.commands import (
    CommandError,
    UnknownCommandException,
)
from ._server import ListenSpec, MonitorServer
from ._session import Session
from ._style import PLAIN, Style
from ._trace_commands import TraceCommands
from .backends import DEFAULT_HOP_TIMEOUT, Backend, get_backend_class

log = logging.getLogger("aiomonitor")

MONITOR_HOST = "127.0.0.1"
MONITOR_PORT = 50101
CONSOLE_PORT = 50102


class _Discard(io.StringIO):
    """``_sout`` outside any session: accepted and dropped."""


class Monitor(BuiltinCommands, TraceCommands):
    """A telnet monitor (and Python console) for one running event loop.

    Subclass it to add ``do_<COMMAND>`` methods; inside them, write to
    ``self._sout`` and read ``self._sin``: each resolves to the session that
    typed the command, so concurrent clients never see each other's output.
    Commands run in a worker thread of the monitor (a blocking call in one
    stalls neither the app nor other clients); ``async def`` commands run in
    the monitored loop instead.

    Beyond the classic arguments:

    * ``path`` / ``console_path``: listen on unix sockets (mode 0600) instead
      of TCP ports; removed on close.
    * ``password``: asked before anything else on both ports.
    * ``max_sessions``: refuse clients beyond this many, with a message.
    * ``hop_timeout``: how long a command waits for the monitored loop
      (cancel, console statements) before saying it is blocked.
    * ``write_timeout``: a client that reads nothing for this long is dropped.
    * ``trace_tasks``: remember where each task was created, by which task
      and who is cancelling it (``ps``, ``where``, ``pstree``).  Off by
      default: it costs ~1 us per task created (measured in benchmarks/).
    * ``max_termination_history``: with ``trace_tasks``, how many ended tasks
      are remembered, with how they ended and who cancelled them (``ended``,
      ``where-ended``).  0, the default, keeps none: the history costs another
      ~0.5 us per task (a ``__del__``), which would take tracing past its
      budget of 1.5x on a create-and-await benchmark.
    * ``trace_timing``: count each task's steps, busy time and longest step
      (``ps`` columns, ``top busy``); costs a Python call per step.
    * ``backend``: monitor something other than an asyncio loop (see
      ``monitor_trio``).
    """

    _cmd_prefix = commands.COMMAND_PREFIX
    _empty_result = object()

    prompt = "monitor >>> "
    intro = "\n{framework} Monitor: {tasknum} task{s} running\nType help for available commands\n\n"
    help_template = "{cmd_name} {arg_list}\n    {doc}\n"
    help_short_template = "    {cmd_name}{cmd_arg_sep}{arg_list}: {doc_firstline}"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        host: str | None = MONITOR_HOST,
        port: int = MONITOR_PORT,
        console_port: int = CONSOLE_PORT,
        console_enabled: bool = True,
        locals: dict[str, Any] | None = None,  # noqa: A002 - the documented name
        path: str | None = None,
        console_path: str | None = None,
        password: str | None = None,
        max_sessions: int | None = None,
        hop_timeout: float = DEFAULT_HOP_TIMEOUT,
        write_timeout: float = 30.0,
        trace_tasks: bool = False,
        max_termination_history: int = 0,
        trace_timing: bool = False,
        backend: Backend | None = None,
    ) -> None:
        self._host = host or MONITOR_HOST
        self._port = port
        self._console_port = console_port
        self._console_enabled = console_enabled
        self._locals = locals
        self._path = path
        self._console_path = console_path
        self._password = password
        self._max_sessions = max_sessions
        self._hop_timeout = hop_timeout
        self._write_timeout = write_timeout
        if backend is None:
            backend = get_backend_class("asyncio")(  # type: ignore[call-arg]
                _resolve_loop(loop), trace=trace_tasks, history_size=max_termination_history, timing=trace_timing
            )
        self._backend = backend
        self._backend.hop_timeout = hop_timeout
        self._loop = loop
        self._server: MonitorServer | None = None
        self._unix_paths: list[str] = []
        self._started = False
        self._closed = False
        # Per instance, so two monitors in one process never share sessions.
        self._session_var: ContextVar[Session | None] = ContextVar(f"aiomonitor_session_{id(self)}", default=None)
        self._heavy_work = threading.Lock()
        self._lastcmd_fallback: str | None = None
        self._sout_fallback: TextIO | None = None
        self._sin_fallback: TextIO | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._host}:{self._port}>"

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Bind the ports and start the server thread.

        Raises ``OSError`` at once if a port is taken; nothing is left running.
        """
        if self._closed:
            raise RuntimeError("this Monitor was closed; create a new one")
        if self._started:
            raise RuntimeError("this Monitor is already started")
        listeners = self._bind()
        self._server = MonitorServer(self, listeners, self._max_sessions, name="aiomonitor-server")
        self._server.start()
        self._backend.attach()
        self._started = True
        for spec in listeners:
            log.info("aiomonitor: listening on %s", _listen.describe(spec.sock))

    def _bind(self) -> list[ListenSpec]:
        listeners: list[ListenSpec] = []
        try:
            listeners.append(ListenSpec(self._bind_one(self._path, self._port, console=False), console_only=False))
            if self._console_enabled:
                sock = self._bind_one(self._console_path, self._console_port, console=True)
                listeners.append(ListenSpec(sock, console_only=True))
        except BaseException:
            for spec in listeners:
                spec.sock.close()
            self._remove_unix_paths()
            raise
        return listeners

    def _bind_one(self, path: str | None, port: int, *, console: bool) -> socket.socket:
        if path:
            sock = _listen.bind_unix(path)
            self._unix_paths.append(path)
            return sock
        sock = _listen.bind_tcp(self._host, port)
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
        if self._server is not None:
            self._server.stop()
            self._backend.detach()
        self._remove_unix_paths()

    def _remove_unix_paths(self) -> None:
        while self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(self._unix_paths.pop())

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def port(self) -> int:
        """The monitor's TCP port (the real one if 0 was asked for)."""
        return self._port

    @property
    def console_port(self) -> int:
        return self._console_port

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

    # -- what sessions need (SessionHost) --------------------------------------

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def hop_timeout(self) -> float:
        return self._hop_timeout

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def write_timeout(self) -> float:
        """A client that reads nothing for this long is disconnected."""
        return self._write_timeout

    def _session_intro(self) -> str:
        tasknum = self._backend.task_count()
        framework = self._backend.framework.capitalize()
        return self.intro.format(tasknum=tasknum, s="" if tasknum == 1 else "s", framework=framework)

    def _session_dispatch(self, session: Session, line: str) -> None:
        """Run one command line for *session* (a worker thread)."""
        token = self._session_var.set(session)
        try:
            self._command_dispatch(line)
        except Exception as exc:  # noqa: BLE001 - a broken hook or command must not end the session
            self._report_error("Unexpected exception during command execution", exc)
        finally:
            self._session_var.reset(token)

    def _session_console(self, session: Session) -> ConsoleState | None:
        if not self._console_enabled:
            return None
        framework = importlib.import_module(self._backend.framework)
        namespace: dict[str, Any] = {self._backend.framework: framework}
        namespace.update(self._locals or {})
        return ConsoleState(namespace, session.output.write_nowait)

    # -- per-session state, resolved through the current session -----------------

    @property
    def _session(self) -> Session | None:
        return self._session_var.get()

    @property
    def _width(self) -> int | None:
        """The client's terminal width, when it told us."""
        session = self._session
        return session.columns if session is not None else None

    @property
    def _style(self) -> Style:
        """Colours for a client in a terminal, none for everyone else."""
        session = self._session
        return session.style if session is not None else PLAIN

    @property
    def _sout(self) -> TextIO:
        session = self._session
        if session is not None:
            return cast(TextIO, session.output)
        return self._sout_fallback or _Discard()

    @_sout.setter
    def _sout(self, stream: TextIO) -> None:
        self._sout_fallback = stream

    @property
    def _sin(self) -> TextIO:
        session = self._session
        if session is not None:
            return cast(TextIO, session.input)
        return self._sin_fallback or io.StringIO()

    @_sin.setter
    def _sin(self, stream: TextIO) -> None:
        self._sin_fallback = stream

    @property
    def lastcmd(self) -> str | None:
        """The last command line entered in this session."""
        session = self._session
        return session.lastcmd if session is not None else self._lastcmd_fallback

    @lastcmd.setter
    def lastcmd(self, value: str | None) -> None:
        session = self._session
        if session is not None:
            session.lastcmd = value
        else:
            self._lastcmd_fallback = value

    # -- the classic command loop hooks -----------------------------------------

    def _command_dispatch(self, user_input: str) -> None:
        if not user_input.strip():
            self.emptyline()
            return
        self.lastcmd = user_input
        try:
            comm, *args = commands.split_line(user_input)
        except CommandError as exc:
            self._sout.write(f"{exc}\n")
            return
        result: Any = self._empty_result
        caught: Exception | None = None
        mapped: Sequence[Any] = args
        try:
            cmd, mapped = self.precmd(comm, args)
        except UnknownCommandException as exc:
            caught = exc
            self.default(comm, args)
        except CommandError as exc:
            caught = exc
            self._sout.write(f"{exc}\n")
        else:
            try:
                result = self._run_command(cmd, mapped)
            except Exception as exc:  # noqa: BLE001 - reported to the client, handed to postcmd
                caught = exc
                self._report_error(f"Command {comm!r} failed", exc)
        self.postcmd(comm, mapped, result, caught)

    def _run_command(self, cmd: Callable[..., Any], args: Sequence[Any]) -> Any:
        result = cmd(*args)
        if asyncio.iscoroutine(result):  # async def do_x: runs in the monitored loop
            result = self._await_in_loop(result)
        return result

    def _await_in_loop(self, coro: Any) -> Any:
        submission = self._backend.submit(lambda: coro)
        session = self._session
        try:
            submission.started.result(self._hop_timeout)
        except concurrent.futures.TimeoutError:  # not the builtin one before Python 3.11
            submission.cancel()
            raise CommandError(
                f"the event loop did not respond within {self._hop_timeout:g} s (is it blocked?)"
            ) from None
        while True:
            try:
                return submission.future.result(0.1)
            except concurrent.futures.TimeoutError:
                if session is not None and session.interrupted.is_set():
                    submission.cancel()
                    raise CommandError("interrupted") from None

    def precmd(self, comm: str, args: Sequence[str]) -> tuple[Callable[..., Any], Sequence[Any]]:
        """Resolve *comm* to a ``do_*`` method and convert *args* for it."""
        cmd = self._getcmd(comm)
        return cmd, list(self._map_args(cmd, args))

    def postcmd(self, comm: str, args: Sequence[Any], result: Any, exception: Exception | None) -> None:
        """Runs after every command; does nothing by default."""

    def emptyline(self) -> None:
        """An empty line repeats the last command, as in ``cmd.Cmd``."""
        if self.lastcmd is not None:
            self._command_dispatch(self.lastcmd)

    def default(self, comm: str, args: Sequence[str]) -> None:
        """Called for a command that does not exist."""
        self._sout.write(f"No such command: {comm}\n")

    def _getcmd(self, comm: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self, commands.resolve(self, comm))
        return method

    def _map_args(self, cmd: Callable[..., Any], args: Sequence[str]) -> Iterator[Any]:
        return commands.map_args(cmd, args)

    def _report_error(self, what: str, exc: Exception) -> None:
        log.exception("aiomonitor: %s", what, exc_info=exc)
        short = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4))
        self._sout.write(f"{what}: {exc!r}\n{short}")


def _resolve_loop(loop: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
    if loop is not None:
        return loop
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return asyncio.get_event_loop_policy().get_event_loop()


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
    cancellable_tasks: bool = True,
    trace_tasks: bool = False,
    max_termination_history: int = 0,
    trace_timing: bool = False,
    **options: Any,
) -> Iterator[Monitor]:
    """Monitor the trio run this is called from: ``with monitor_trio(): ...``.

    *cancellable_tasks* gives each task spawned from now on its own cancel
    scope, so ``cancel`` can stop one task alone (a few microseconds per
    spawn; see the trio backend's notes).  Requires ``aiomonitor[trio]``.
    """
    try:
        backend_class = get_backend_class("trio")
    except ImportError as exc:
        raise ImportError("monitor_trio() needs trio: pip install 'aiomonitor[trio]'") from exc
    backend = backend_class(  # type: ignore[call-arg]
        cancellable_tasks=cancellable_tasks,
        trace=trace_tasks,
        history_size=max_termination_history,
        timing=trace_timing,
    )
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
