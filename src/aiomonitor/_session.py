"""One client connection: telnet input in, command and console output out.

Runs in the server thread.  Three tasks per connection: a reader that turns
bytes into events, a writer that drains :class:`SessionOutput`, and the
session itself.  Commands run in worker threads (a custom command may block
on I/O), console statements run in the monitored loop through the backend.
Nothing here knows asyncio's or trio's internals.
"""

from __future__ import annotations

import concurrent.futures
import enum
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import anyio
from anyio import CapacityLimiter
from anyio.abc import ByteStream

from ._console import ConsoleState, LeaveConsole, banner, format_exception
from ._protocol.telnet import (
    EndOfInput,
    Event,
    Interrupt,
    Line,
    LineTooLong,
    TelnetParser,
    TerminalType,
    WindowSize,
)
from ._streams import SessionInput, SessionOutput
from ._style import PLAIN, Style, style_for_terminal
from .backends import Backend

log = logging.getLogger("aiomonitor")

#: How long a closing session may take to send what it still has buffered.
_DRAIN_TIMEOUT = 1.0
#: Password attempts before the connection is dropped.
_AUTH_ATTEMPTS = 3


class SessionHost(Protocol):
    """What a session needs from the Monitor that owns it."""

    prompt: str

    @property
    def backend(self) -> Backend: ...

    @property
    def hop_timeout(self) -> float: ...

    @property
    def password(self) -> str | None: ...

    @property
    def write_timeout(self) -> float: ...

    def _session_intro(self) -> str: ...

    def _session_dispatch(self, session: Session, line: str) -> None: ...

    def _session_console(self, session: Session) -> ConsoleState | None: ...


class _Wait(enum.Enum):
    DONE = enum.auto()
    INTERRUPTED = enum.auto()
    TIMEOUT = enum.auto()


class Session:
    """The state and I/O of one connected client.

    Attributes read by commands from worker threads (``lastcmd``, ``columns``, ``style``,
    ``interrupted``) are plain values or thread-safe primitives.
    """

    def __init__(
        self,
        host: SessionHost,
        stream: ByteStream,
        peer: str,
        call_in_server: Callable[[Callable[[], None]], None],
        nonblocking_threads: Callable[[], set[int | None]],
        limiter: CapacityLimiter,
    ) -> None:
        self.host = host
        self.peer = peer
        self.connected_at = time.monotonic()
        self.kind = "monitor"
        #: The command line running now, for ``who`` (None when idle).
        self.running: str | None = None
        self.lastcmd: str | None = None
        self.columns: int | None = None
        #: Colours only once the client named a real terminal (see _style).
        self.style: Style = PLAIN
        self.interrupted = threading.Event()
        #: Set when the client types anything (or Ctrl-C) while a command runs.
        self.attention = threading.Event()
        self.exit_requested = False
        self.console_requested = False
        self.console: ConsoleState | None = None
        self._stream = stream
        self._call_in_server = call_in_server
        self._limiter = limiter
        self._parser = TelnetParser()
        self._events_in, self._events_out = anyio.create_memory_object_stream[Event](64)
        self._output_ready = anyio.Event()
        self._waiter: anyio.Event | None = None
        self._busy = False
        self._sending = False
        self._scope = anyio.CancelScope()
        self.output = SessionOutput(self._wake_writer, nonblocking_threads, self.abort, host.write_timeout)
        self.input = SessionInput(self._read_line_from_thread)

    # -- lifecycle ---------------------------------------------------------

    async def run(self, console_only: bool) -> None:
        """Serve the client until it leaves, is dropped, or the monitor closes."""
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._guard, self._reader)
                    tg.start_soon(self._guard, self._writer)
                    await self._guard(self._main, console_only)
                    with anyio.move_on_after(_DRAIN_TIMEOUT):
                        await self._drained()
                    tg.cancel_scope.cancel()
        finally:
            self.output.shut()
            self.interrupted.set()  # a command still running sees the session end
            self.attention.set()
            self._events_in.close()
            self._events_out.close()
            await anyio.aclose_forcefully(self._stream)

    def abort(self) -> None:
        """Drop the connection (thread-safe): it stalled, or the monitor closes."""
        self._call_in_server(self._scope.cancel)

    async def say_goodbye(self, message: str) -> None:
        self.output.write_nowait(message)
        with anyio.move_on_after(_DRAIN_TIMEOUT / 2):
            await self._drained()
        self._scope.cancel()

    async def _guard(self, func: Callable[..., Any], *args: Any) -> None:
        """Run one of the session's tasks; whatever it raises ends only this session.

        A task that simply returns ends nothing: the reader returns at end of
        input while the session may still be answering the lines before it.
        """
        try:
            await func(*args)
        except (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
            OSError,
            TimeoutError,
        ):
            log.debug("aiomonitor: connection from %s lost", self.peer)
            self._scope.cancel()
        except Exception:
            log.exception("aiomonitor: session with %s failed", self.peer)
            self._scope.cancel()

    async def _drained(self) -> None:
        while self.output.pending() or self._sending:
            await anyio.sleep(0.01)

    # -- output --------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write from the server thread (never blocks)."""
        self.output.write_nowait(text)

    def _wake_writer(self) -> None:
        self._call_in_server(self._output_ready.set)

    async def _writer(self) -> None:
        while True:
            data = self.output.take()
            if not data:
                await self._output_ready.wait()
                self._output_ready = anyio.Event()
                continue
            self._sending = True
            with anyio.fail_after(self.host.write_timeout):
                await self._stream.send(data)
            self._sending = False

    # -- input ---------------------------------------------------------------

    async def _reader(self) -> None:
        while not self._parser.closed:
            try:
                data = await self._stream.receive(65536)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                data = b""
            for event in self._parser.feed(data):
                await self._route(event)
            replies = self._parser.take_replies()
            if replies:
                self.output.put_raw(replies)
        self._events_in.close()

    async def _route(self, event: Event) -> None:
        if self._busy and not isinstance(event, (WindowSize, TerminalType)):
            self.attention.set()
        if isinstance(event, Interrupt):
            self.interrupted.set()
            if self._waiter is not None:
                self._waiter.set()
            if self._busy:  # the running command or statement handles it
                return
        elif isinstance(event, WindowSize):
            self.columns = event.columns or None
            return
        elif isinstance(event, TerminalType):
            self.style = style_for_terminal(event.name)
            return
        await self._events_in.send(event)

    async def _next_event(self) -> Event:
        try:
            return await self._events_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return EndOfInput()

    def wait_for_input(self, timeout: float) -> bool:
        """For live views (worker thread): wait up to *timeout*; True once the
        client pressed Enter (that line is consumed) or Ctrl-C, or left."""
        if not self.attention.wait(timeout):
            return False
        if not self.interrupted.is_set():
            self._read_line_from_thread()
        return True

    def _read_line_from_thread(self) -> str | None:
        """``_sin.readline()`` for a command: wait in its worker thread."""
        try:
            return anyio.from_thread.run(self._next_line)
        except Exception:  # noqa: BLE001 - the session or the server is gone
            return None

    async def _next_line(self) -> str | None:
        event = await self._next_event()
        return event.text if isinstance(event, Line) else None

    async def _wait(self, future: concurrent.futures.Future[Any], timeout: float | None) -> _Wait:
        """Wait for a future completed in another thread, or for Ctrl-C."""
        done = anyio.Event()
        self._waiter = done
        future.add_done_callback(lambda _: self._call_in_server(done.set))
        try:
            with anyio.move_on_after(timeout):
                await done.wait()
        finally:
            self._waiter = None
        if future.done():
            return _Wait.DONE
        return _Wait.INTERRUPTED if self.interrupted.is_set() else _Wait.TIMEOUT

    # -- the conversation ------------------------------------------------------

    async def _main(self, console_only: bool) -> None:
        if not await self._authenticate():
            return
        if console_only:
            self.kind = "console"
            await self._console_loop()
            return
        self.write(await self._in_worker(self.host._session_intro))
        await self._monitor_loop()

    async def _in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        self._busy = True
        self.interrupted.clear()
        self.attention.clear()
        try:
            return await anyio.to_thread.run_sync(_named, func, *args, abandon_on_cancel=True, limiter=self._limiter)
        finally:
            self._busy = False

    async def _authenticate(self) -> bool:
        password = self.host.password
        if password is None:
            return True
        for _ in range(_AUTH_ATTEMPTS):
            self.write("Password: ")
            event = await self._next_event()
            if not isinstance(event, Line):
                if isinstance(event, EndOfInput):
                    return False
                continue
            if hmac.compare_digest(event.text.encode(), password.encode()):
                return True
            self.write("Wrong password.\n")
        self.write("Too many failed attempts; bye.\n")
        return False

    async def _monitor_loop(self) -> None:
        while True:
            self.write(self.host.prompt)
            event = await self._next_event()
            if isinstance(event, EndOfInput):
                return
            if isinstance(event, LineTooLong):
                self.write(f"Line too long (over {event.limit} bytes); ignored.\n")
            elif isinstance(event, Line):
                self.running = event.text
                try:
                    await self._in_worker(self.host._session_dispatch, self, event.text)
                finally:
                    self.running = None
            else:
                self.write("\n")
            if self.exit_requested:
                return
            if self.console_requested:
                self.console_requested = False
                await self._console_loop()
                self.write("Back in the monitor.\n")

    async def _console_loop(self) -> None:
        state = self.console = self.console or self.host._session_console(self)
        if state is None:
            self.write("The Python console is disabled for this monitor.\n")
            return
        self.write(banner(self.host.backend.framework))
        while True:
            self.write(state.prompt)
            event = await self._next_event()
            if isinstance(event, EndOfInput):
                self.write("\n")
                return
            if isinstance(event, (Interrupt, LineTooLong)):
                state.reset()
                self.write("\nKeyboardInterrupt\n" if isinstance(event, Interrupt) else "Line too long; ignored.\n")
                continue
            try:
                code = state.push(event.text)  # type: ignore[union-attr]
            except (SyntaxError, ValueError, OverflowError) as exc:
                self.write(format_exception(exc))
                continue
            if code is not None and not await self._execute(state, code):
                return

    async def _execute(self, state: ConsoleState, code: Any) -> bool:
        """Run one statement in the monitored loop; False means leave the console."""
        submission = self.host.backend.submit(state.statement(code))
        self._busy = True
        self.interrupted.clear()
        try:
            started = await self._wait(submission.started, self.host.hop_timeout)
            if started is not _Wait.DONE:
                submission.cancel()
                if started is _Wait.TIMEOUT:
                    self.write(
                        f"The event loop did not pick up the statement within {self.host.hop_timeout:g} s "
                        "(is it blocked?); the statement was withdrawn.\n"
                    )
                else:
                    self.write("KeyboardInterrupt\n")
                return True
            if await self._wait(submission.future, None) is _Wait.INTERRUPTED:
                submission.cancel()
                await self._wait(submission.future, self.host.hop_timeout)
                self.write("KeyboardInterrupt\n")
                return True
        finally:
            self._busy = False
        return self._report(submission.future)

    def _report(self, future: concurrent.futures.Future[Any]) -> bool:
        if future.cancelled():
            self.write("Cancelled\n")
            return True
        exc = future.exception()
        if isinstance(exc, LeaveConsole):
            return False
        if isinstance(exc, concurrent.futures.CancelledError):
            self.write("Cancelled\n")
        elif exc is not None:
            self.write(format_exception(exc))
        return True


def _named(func: Callable[..., Any], *args: Any) -> Any:
    """Run a command, its worker thread named for stack dumps (py-spy, ``faulthandler``).

    The pool belongs to the monitor's own event loop, so the name stays true.
    """
    threading.current_thread().name = "aiomonitor-worker"
    return func(*args)
