"""One client connection: bytes in, telnet events out; text in, bounded bytes out.

Runs in the server thread.  Three tasks per connection: a reader that turns
bytes into events, a writer that drains :class:`SessionOutput`, and the
conversation (``_session`` or ``_repl``) handed to :meth:`Connection.serve`.
This module knows nothing of commands, consoles or frameworks: its
:class:`ClientState` is the ``_commands._context.Client`` that commands see,
and the connection is the event source conversations read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO, cast

import anyio

from .._protocol.telnet import EndOfInput, Event, Interrupt, Line, TelnetParser, TerminalType, WindowSize
from .._render._style import PLAIN, Style, style_for_terminal
from ._socket_stream import ClientSocket
from ._streams import SessionInput, SessionOutput
from ._workers import WorkerPool

log = logging.getLogger("aiomonitor")

#: How long a closing connection may take to send what it still has buffered.
DRAIN_TIMEOUT = 1.0
#: Bytes read at once.  Parsing is bounded per read: a flood of telnet
#: commands (each handled in Python) costs at most a few ms per read.
READ_SIZE = 8192
#: After each read the reader rests this many times as long as it parsed, so
#: a client flooding us keeps at most ~1/(1 + PACING) of the GIL, however it
#: crafts its bytes.  Typed lines parse in microseconds: no rest to notice.
PACING = 4.0


class ClientState:
    """The client as commands see it (``_commands._context.Client``): who it
    is, what it runs, its window and colours, its interrupts and its streams.

    Commands read it from worker threads: its attributes are plain values or
    thread-safe primitives.  Set by the connection and the conversation in
    the server thread.
    """

    def __init__(self, peer: str, host: str, sink: SessionOutput, read_line: Callable[[], str | None]) -> None:
        self.peer = peer
        #: The host failed attempts are counted by (the door's throttle).
        self.host = host
        self.connected_at = time.monotonic()
        self.kind = "monitor"
        #: A read-only session (a control password exists and was not given):
        #: only ``@readonly`` commands run until ``control``.
        self.readonly = False
        #: This session's number, for ``who`` and the audit trail (set at admission).
        self.session = 0
        #: The command line running now, for ``who`` (None when idle).
        self.running: str | None = None
        self.lastcmd: str | None = None
        self.columns: int | None = None
        #: Colours only once the client named a real terminal (see _style).
        self.style: Style = PLAIN
        self.interrupted = threading.Event()
        #: Set when the client types anything (or Ctrl-C) while work runs.
        self.attention = threading.Event()
        #: What the session writes; drained by the connection's writer task.
        self.sink = sink
        self._read_line = read_line
        self._input = SessionInput(read_line)

    @property
    def who(self) -> str:
        """The client, as the audit trail names it."""
        return f"{self.peer} (session {self.session})"

    @property
    def output(self) -> TextIO:
        """``self._sout`` of this client's commands (any thread; never blocks
        the server's or the monitored loop's thread, see SessionOutput)."""
        return cast(TextIO, self.sink)

    @property
    def input(self) -> TextIO:
        """``self._sin`` of this client's commands (worker threads)."""
        return cast(TextIO, self._input)

    def wait_for_input(self, timeout: float) -> bool:
        """For live views (worker thread): wait up to *timeout*; True once the
        client pressed Enter (that line is consumed) or Ctrl-C, or left."""
        if not self.attention.wait(timeout):
            return False
        if not self.interrupted.is_set():
            self._read_line()
        return True


class Connection:
    """The wire, the tasks and the login budget of one connected client.

    Commands never see it: they see its :class:`ClientState` (``client``).
    """

    def __init__(
        self,
        stream: ClientSocket,
        peer: str,
        host: str,
        call_in_server: Callable[[Callable[[], None]], None],
        nonblocking_threads: Callable[[], set[int | None]],
        workers: WorkerPool,
        write_timeout: float,
        login_input_limit: int | None = None,
    ) -> None:
        self._stream = stream
        self._call_in_server = call_in_server
        self._workers = workers
        self._write_timeout = write_timeout
        self._parser = TelnetParser()
        self._events_in, self._events_out = anyio.create_memory_object_stream[Event](64)
        self._output_ready = anyio.Event()
        self._busy = False
        self._sending = False
        self._input_ended = False
        #: Bytes the client may still send before it logs in (None: no limit).
        self._login_budget = login_input_limit
        self._received = 0
        self._scope = anyio.CancelScope()
        #: What commands see of this client (and its output, which we drain).
        sink = SessionOutput(self._wake_writer, nonblocking_threads)
        self.client = ClientState(peer, host, sink, self._read_line_from_thread)

    @property
    def peer(self) -> str:
        return self.client.peer

    @property
    def _output(self) -> SessionOutput:
        return self.client.sink

    # -- lifecycle ---------------------------------------------------------

    async def serve(self, conversation: Callable[[Connection], Awaitable[None]]) -> None:
        """Run *conversation* until it ends, the client leaves or is dropped, or the monitor closes."""
        try:
            with self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._guard, self._reader)
                    tg.start_soon(self._guard, self._writer)
                    await self._guard(conversation, self)
                    with anyio.move_on_after(DRAIN_TIMEOUT):
                        await self._drained()
                    tg.cancel_scope.cancel()
        finally:
            self._output.shut()
            self.client.interrupted.set()  # work still running for this client sees it leave
            self.client.attention.set()
            self._events_in.close()
            self._events_out.close()
            self._stream.close()

    def abort(self) -> None:
        """Drop the connection (thread-safe): it stalled, or the monitor closes."""
        self._call_in_server(self._scope.cancel)

    def close_in_forked_child(self) -> None:
        """After ``fork()``, in the child: close its copy of the client's socket."""
        self._stream.close_in_forked_child()

    async def say_goodbye(self, message: str) -> None:
        self._output.write_nowait(message)
        with anyio.move_on_after(DRAIN_TIMEOUT / 2):
            await self._drained()
        self._scope.cancel()

    async def _guard(self, func: Callable[..., Any], *args: Any) -> None:
        """Run one of the connection's tasks; whatever it raises ends only this connection.

        A task that simply returns ends nothing: the reader returns at end of
        input while the conversation may still be answering the lines before it.
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
        while self._output.pending() or self._sending:
            await anyio.sleep(0.01)

    # -- output --------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write without ever blocking (the server's thread, the monitored loop's)."""
        self._output.write_nowait(text)

    def prompt(self, text: str) -> None:
        """End the answer in progress with the prompt *text* (server thread):
        a cut answer still gets it, after its marker."""
        self._output.end_answer(text)

    def _wake_writer(self) -> None:
        self._call_in_server(self._output_ready.set)

    async def _writer(self) -> None:
        """Send what the session writes.  A client that takes no byte for
        ``write_timeout`` loses the rest of the answer (its marker and its
        prompt still follow); one that takes nothing for as long again,
        not even those, is dropped."""
        cut = False  # the answer was cut, and the client has taken nothing since
        while True:
            data = self._output.take()
            if not data:
                await self._output_ready.wait()
                self._output_ready = anyio.Event()
                continue
            self._sending = True
            try:
                await self._stream.send(data, self._write_timeout)
            except TimeoutError:
                if cut:
                    raise
                log.info("aiomonitor: %s took nothing for %g s; its answer was cut", self.peer, self._write_timeout)
                cut = True
                self._output.cut()
                continue
            finally:
                self._sending = False
            cut = False

    # -- input ---------------------------------------------------------------

    def is_silent(self) -> bool:
        """Whether the client has sent nothing at all, and nothing is on its way in."""
        return self._received == 0 and not self._stream.has_input()

    def logged_in(self) -> None:
        """The client gave the password: lift the limit on what it may send."""
        self._login_budget = None

    async def _reader(self) -> None:
        while not self._parser.closed:
            budget = self._login_budget
            try:
                # Before login, never read past the budget: one byte more is enough to know.
                data = await self._stream.receive(READ_SIZE if budget is None else min(READ_SIZE, budget + 1))
            except (anyio.ClosedResourceError, OSError):
                data = b""
            self._received += len(data)
            if budget is not None and self._login_budget is not None:  # (not logged in meanwhile)
                if len(data) > budget:
                    log.info("aiomonitor: %s sent too much before logging in; dropped", self.peer)
                    self._scope.cancel()
                    return
                self._login_budget = budget - len(data)
            started = time.perf_counter()
            events = self._parser.feed(data)
            spent = time.perf_counter() - started
            for event in events:
                await self._route(event)
            replies = self._parser.take_replies()
            if replies:
                self._output.put_raw(replies)
            if spent > 1e-4:
                await anyio.sleep(spent * PACING)
        # The client is gone (or will say nothing more): whatever runs for it
        # now, a console statement above all, is interrupted at once rather
        # than left running in the app with nobody to see it end.
        self._input_ended = True
        self.client.interrupted.set()
        self.client.attention.set()
        self._events_in.close()

    async def _route(self, event: Event) -> None:
        if self._busy and not isinstance(event, (WindowSize, TerminalType)):
            self.client.attention.set()
        if isinstance(event, Interrupt):
            self.client.interrupted.set()
            if self._busy:  # the running command or statement handles it
                return
        elif isinstance(event, WindowSize):
            self.client.columns = event.columns or None
            return
        elif isinstance(event, TerminalType):
            self.client.style = style_for_terminal(event.name)
            return
        await self._events_in.send(event)

    async def next_event(self) -> Event:
        """The next line, Ctrl-C or end of input (server thread)."""
        try:
            return await self._events_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return EndOfInput()

    def _read_line_from_thread(self) -> str | None:
        """``_sin.readline()`` for a command: wait in its worker thread."""
        try:
            return anyio.from_thread.run(self._next_line)
        except Exception:  # noqa: BLE001 - the connection or the server is gone
            return None

    async def _next_line(self) -> str | None:
        event = await self.next_event()
        return event.text if isinstance(event, Line) else None

    # -- work for this client in a worker thread -----------------------------------

    async def in_worker(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run blocking *func* in a monitor worker thread, this client's work.

        While it runs, Ctrl-C and typed input go to it (``interrupted``,
        ``attention``) instead of the conversation.
        """
        self._busy = True
        self._output.begin_answer()
        if not self._input_ended:  # work started after the client left is interrupted from the start
            self.client.interrupted.clear()
            self.client.attention.clear()
        try:
            return await self._workers.run(func, *args)
        finally:
            self._busy = False
