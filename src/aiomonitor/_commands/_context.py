"""What a command may use: the monitor-wide context and the client that typed it.

Commands (``do_*`` methods, built-in or a user's subclass) reach the monitor
only through what :class:`CommandBase` declares: ``_context`` (backend,
watchdog, the connected clients, settings) and ``_client`` (who typed this
line, resolved per call through a ContextVar, so concurrent sessions never
mix).  They never touch the server, a connection or a conversation, and they
answer "what next" (leave, open the console) by setting the call's
:class:`NextStep`, which the session reads as the command's result.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from .._gil._heavy import output_section
from .._gil._shared_work import SharedWork, compute
from .._protocol.telnet import encode_output
from .._query import _queries as _query
from .._query._audit import AuditTrail
from .._render._style import PLAIN, Style

T = TypeVar("T")

#: Output encoded for the client (``encode_output``), in chunks.
Text = tuple[bytes, ...]

if TYPE_CHECKING:
    from .._dump._bundle import BundleSource
    from .._query._cost import MonitorBill
    from .._query._doctor_query import CancelMemory
    from .._query._stalls import StallRecorder
    from .._query._trend import TrendRecorder
    from .._query._watchdog import LoopWatchdog
    from ..backends import Backend


class NextStep(enum.Enum):
    """What a session does after a command line."""

    PROMPT = "prompt"
    EXIT = "exit"
    CONSOLE = "console"


class Client(Protocol):
    """The connected client, as commands see it.  Safe to read from worker threads."""

    peer: str
    #: The host failed password attempts are counted by.
    host: str
    kind: str
    #: A read-only session: only ``@readonly`` commands run until ``control``.
    readonly: bool

    @property
    def who(self) -> str:
        """The client as the audit trail names it (address, or uid and pid; session number)."""
        ...

    connected_at: float
    #: The command line running now, for ``who`` (None when idle).
    running: str | None
    lastcmd: str | None
    #: The terminal width the client told us, if it did.
    columns: int | None
    style: Style
    #: Set when the client pressed Ctrl-C (or left) while its command runs.
    interrupted: threading.Event

    @property
    def output(self) -> TextIO: ...

    @property
    def input(self) -> TextIO: ...

    def wait_for_input(self, timeout: float) -> bool:
        """Wait up to *timeout*; True once the client pressed Enter or Ctrl-C, or left."""
        ...


@dataclass
class CommandCall:
    """One command line being run for one client."""

    client: Client
    #: Set by ``exit``/``console``; returned to the session by the monitor.
    next_step: NextStep = NextStep.PROMPT


@dataclass(frozen=True)
class CommandContext:
    """The monitor-wide things commands use; one per Monitor."""

    backend: Backend
    watchdog: LoopWatchdog
    #: Stalls of the loop, remembered whether or not anyone was connected.
    stall_recorder: StallRecorder
    #: What ``doctor`` remembers between runs (when tasks were first seen cancelling).
    cancel_memory: CancelMemory
    #: The connected clients (a fresh copy each call; any thread).
    clients: Callable[[], Sequence[Client]]
    console_enabled: bool
    #: Only commands marked ``@readonly`` run (``Monitor(readonly=True)``).
    readonly: bool
    #: ``control``'s check of a control password offered from *host* (the
    #: door's, throttled like a login); False when the monitor has none.
    ask_for_control: Callable[[str, str], bool]
    #: Who changed what: every change and refusal is recorded here.
    audit: AuditTrail
    #: How long a command waits for the monitored loop.
    hop_timeout: float
    #: Runs CPU-heavy computations (snapshots of many tasks) one at a time,
    #: and once for identical requests waiting together (see _shared_work).
    shared_work: SharedWork
    #: What ``dump`` reads (set by the Monitor once its parts exist).
    bundles: BundleSource | None = None
    #: The history ``trace on`` keeps unless told (the monitor's max_termination_history).
    trace_history: int = 0
    #: The flight recorder (``trend``, ``ps --stuck``); None when off.
    trend: TrendRecorder | None = None
    #: What the monitor itself spends (``cost``).
    bill: MonitorBill | None = None
    #: For a monitor over a bundle (``aiomonitor open``): the process it was
    #: taken of and when (``pid``, ``program``, ``taken``); None when live.
    recorded: dict[str, Any] | None = None


class CommandBase:
    """The declared surface every command mixin works with (implemented by Monitor)."""

    #: Methods named this prefix + a command name are commands (``do_``).
    _cmd_prefix: str

    if TYPE_CHECKING:
        _sout: TextIO
        _sin: TextIO
        _context: CommandContext
        _call_var: ContextVar[CommandCall | None]

    def _refusal(self, cmd: Callable[..., Any]) -> str | None:
        """Why *cmd* may not run here (a read-only monitor runs only commands
        marked ``@readonly``), or None."""
        if getattr(cmd, "readonly", False):
            return None
        name = getattr(cmd, "__name__", "")[len(self._cmd_prefix) :] or "that command"
        if self._context.readonly:
            return f"{name} is disabled: this monitor is read-only"
        client = self._client
        if client is not None and client.readonly:
            return f"{name} needs control: type control, then the control password"
        return None

    def _audit(self, action: str, target: str, outcome: str) -> None:
        """Record an action of this command's client (see ``_query._audit``)."""
        client = self._client
        self._context.audit.record(client.who if client is not None else "no session", action, target, outcome)

    @property
    def _call(self) -> CommandCall | None:
        """The command line running in this thread's context, if any."""
        return self._call_var.get()

    @property
    def _client(self) -> Client | None:
        call = self._call
        return call.client if call is not None else None

    @property
    def _width(self) -> int | None:
        """The client's terminal width; None when it did not say (plain telnet,
        nc, piped input): then tables shorten nothing (see ``_table``)."""
        client = self._client
        return client.columns if client is not None else None

    @property
    def _style(self) -> Style:
        """Colours for a client in a terminal, none for everyone else."""
        client = self._client
        return client.style if client is not None else PLAIN

    def _compute(self, func: Callable[..., T], *args: Any, share: Hashable | None = None) -> T:
        """Run CPU-heavy ``func(*args)`` (a snapshot of many tasks, and its text).

        One at a time per monitor, in a heavy section (the collector paused,
        the GIL handed over often: see ``_heavy``).  Requests with the same
        *share* key waiting together get one run's result (see
        ``_shared_work``): the key must name all that the result depends on,
        and the result must be immutable.  *func*
        must neither write to the client nor wait for the loop: it returns
        what to write and the caller writes it afterwards, so a slow reader
        never holds up the others.
        """
        return compute(self._context.shared_work, func, *args, share=share)

    def _compute_text(self, func: Callable[..., Iterable[str]], *args: Any, share: Hashable | None = None) -> Text:
        """``_compute`` for a command's text: encoded for the client once, in
        the heavy section, so clients sharing the result share the bytes."""

        def encoded() -> Text:
            return tuple(encode_output(chunk) for chunk in func(*args))

        return self._compute(encoded, share=share)

    def _write_all(self, text: Text) -> None:
        """Write what ``_compute_text`` made (a worker thread: waits for a slow client)."""
        write_all_encoded = getattr(self._sout, "write_all_encoded", None)
        if write_all_encoded is not None:  # references to the shared bytes (see SessionOutput)
            write_all_encoded(text)
            return
        with output_section():
            for chunk in text:  # a ``_sout`` replaced by the user: plain text, plain line ends
                self._sout.write(chunk.decode().replace("\r\n", "\n"))

    def _one_live_task(self, key: str) -> int | None:
        """The id of the live task *key* names (an id or a name); else say why, and None."""
        ids = _query.live_task_ids(self._context.backend, key)
        if len(ids) == 1:
            return ids[0]
        if not ids:
            self._sout.write(f"No task named {key}\n")
        else:
            listed = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
            self._sout.write(f"{len(ids)} tasks are named {key} ({listed}); give one id\n")
        return None

    def _request(self, step: NextStep) -> None:
        """Ask the session to do *step* once this command returns."""
        call = self._call
        if call is not None:
            call.next_step = step
