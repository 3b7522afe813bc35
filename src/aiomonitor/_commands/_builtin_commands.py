"""The monitor's built-in ``do_*`` commands: thin renderers over ``_query``.

They run in a worker thread of the server, ask the query layer (which reads
the monitored loop without entering it) and write text with ``_format``.
Only ``cancel`` hops into the loop, with a deadline.
"""

from __future__ import annotations

import inspect
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._gil._passes import release_gently
from .._protocol import commands
from .._protocol.commands import CommandError
from .._query import _queries as _query
from .._query._diagnosis import stall_line
from .._query._groups import task_groups
from .._render import _format, _json, _table
from ..backends import LoopUnresponsive, NotCancellable, UnknownTask
from ..utils import alt_names, readonly
from ._context import CommandBase, NextStep

#: How long ``cancel`` waits to see the task finish after asking it to.
CANCEL_GRACE = 1.0
#: How many of the worst recent stalls ``lag`` lists.
LAG_STALLS = 5
#: The largest ``ps -n``: more tasks than any process holds, small enough for C.
MAX_LIMIT = 1_000_000_000


class BuiltinCommands(CommandBase):
    """``help``, ``ps``, ``where``, ``cancel``, ``signal``, ``stacktrace``, ``lag``,
    ``who``, ``console`` and ``exit``."""

    #: What ``help COMMAND`` shows; fields ``cmd_name``, ``arg_list``, ``doc``, ``doc_firstline``.
    help_template = "{cmd_name} {arg_list}\n    {doc}\n"
    #: Like :attr:`help_template`, once per command, for ``help``.
    help_short_template = "    {cmd_name}{cmd_arg_sep}{arg_list}: {doc_firstline}"

    # -- help ------------------------------------------------------------------

    @alt_names("? h")
    @readonly
    def do_help(self, *cmd_names: str) -> None:
        """Show help for command name

        Any number of command names may be given to help, and the long help
        text for all of them will be shown.
        """
        if not cmd_names:
            self._sout.write("Available Commands are:\n\n")
            for cmd in commands.command_names(self, with_alts=False, prefix=self._cmd_prefix):
                disabled = self._refusal(getattr(self, cmd.method_name)) is not None
                mark = "  (disabled: read-only)" if disabled else ""
                self._sout.write(self._help_text(cmd.method_name, self.help_short_template) + mark + "\n")
            return
        for name in cmd_names:
            try:
                method_name = commands.resolve(self, name, prefix=self._cmd_prefix)
            except CommandError as exc:
                self._sout.write(f"{exc}\n")
                continue
            self._sout.write(self._help_text(method_name, self.help_template) + "\n")

    def _help_text(self, method_name: str, template: str) -> str:
        func: Callable[..., Any] = getattr(self, method_name)
        arg_list = commands.arg_list(func)
        doc = inspect.cleandoc(func.__doc__ or "")
        text = template.format(
            cmd_name=method_name[len(self._cmd_prefix) :],
            arg_list=arg_list,
            cmd_arg_sep=" " if arg_list else "",
            doc=doc.replace("\n", "\n    "),
            doc_firstline=commands.first_line(doc),
        )
        aliases = getattr(func, "alt_names", ())
        if aliases and template is not self.help_short_template:
            text += f"    aliases: {', '.join(aliases)}\n"
        return text

    # -- tasks -----------------------------------------------------------------

    @alt_names("p")
    @readonly
    def do_ps(self, *args: str) -> None:
        """Show task table

        Usage: ps [-j] [-g] [-a] [-w] [-s id|name|state|age|busy] [-n COUNT] [--stuck SECONDS] [FILTER...].
        A FILTER keeps the tasks whose id, name, state, coroutine or location
        contains it (ignoring case); -s sorts (age needs trace_tasks, oldest
        first; busy needs trace_timing, busiest first); -n shows at most
        COUNT; -a includes the monitor's own tasks (console statements); -w
        shows every column, where a narrow window hides some (a line under
        the table says which); -g folds the tasks that run the same coroutine
        at the same line into one row each, largest first (filters apply
        first); --stuck keeps the tasks that have waited at the same line for
        at least SECONDS (as long as the flight recorder has watched), the
        longest first; -j prints one JSON object per line (per group with -g).
        """
        try:
            options, query = _ps_options(args)
        except ValueError as exc:
            self._sout.write(f"{exc}\n")
            return
        if options.stuck is not None and self._context.trend is None:
            self._sout.write("ps --stuck: the flight recorder is off (Monitor(trend_interval=None))\n")
            return
        self._warn_if_blocked()
        width = self._width
        share = ("ps", options, query, width, self._style)
        self._write_all(self._compute_text(self._ps_text, options, query, width, share=share))

    def _ps_text(self, options: PsOptions, query: _query.TaskQuery, width: int | None) -> list[str]:
        # The snapshot streams into plain strings (see Backend.snapshot): no
        # list of 100k snapshots, unless a sort needs them all at once.
        backend = self._context.backend
        if options.stuck is not None:
            assert self._context.trend is not None
            stuck = dict(self._context.trend.iter_stuck(options.stuck))
            selection = _query.select_stuck(backend, stuck, query)
        else:
            selection = _query.select_tasks(backend, query)
        if options.grouped:
            groups = task_groups(selection.chunks())
            if options.as_json:
                return [_json.groups_text(groups)]
            return _format.groups_text(selection.total, groups, width, self._style, options.wide)
        if options.as_json:
            return list(_json.task_text(selection.chunks()))
        traced, timed = backend.traced, backend.timed
        columns = _format.ps_columns(selection.chunks(), traced, timed)
        narrowed = query.filters or query.limit is not None
        shown = f" ({selection.shown} shown)" if narrowed else ""
        redundant = _format.coroutine_adds_nothing(columns[3], columns[4])
        layout = _format.ps_table(traced, timed, redundant)
        table = list(_table.table_text(layout, columns, width, self._style, state_column=1, wide=options.wide))
        # A column per field of 100k new strings: dropped at once, they were
        # freed by one cascade that held the GIL ~9 ms.
        release_gently(*columns)
        head = f"{_format.plural(selection.total, 'task')}{shown}\n"
        if options.stuck is not None:
            head = (
                f"{_format.plural(selection.total, 'task')}{shown} waiting at the same line for"
                f" {options.stuck:g} s or more (as long as the flight recorder has watched), the longest first\n"
            )
        return [head, *table]

    @alt_names("w")
    @readonly
    def do_where(self, taskid: str) -> None:
        """Show stack frames for a task (by id or by name)"""
        self._warn_if_blocked()
        resolved = self._one_live_task(taskid)
        if resolved is None:
            return
        self._where(resolved)

    def _where(self, taskid: int) -> None:
        try:
            detail = self._compute(_query.task_detail, self._context.backend, taskid, share=("where", taskid))
        except UnknownTask:
            self._sout.write(f"No task {taskid}\n")
            return
        self._sout.write(f"Stack for task {taskid} (most recent call last):\n")
        stack = _format.format_stack(detail.stack, self._style)
        self._sout.write(stack or "  No stack available (the task has not started yet?)\n")
        if detail.wait is not None:
            self._sout.write(_format.wait_lines(detail.wait, detail.wait_names))
        self._sout.write(_format.canceller_lines("Cancellation requested by", detail.canceller, self._style))
        self._sout.write(_format.creation_lines(detail.record, detail.chain_names))
        backend = self._context.backend
        if detail.record is None and backend.traced:
            now = "" if backend.tracing else " (it is off now: trace on records the tasks created from then on)"
            self._sout.write(f"No creation chain: it was created before tracing began, or while it was off{now}.\n")

    def do_cancel(self, taskid: str) -> None:
        """Cancel an indicated task (by id or by name)"""
        resolved = self._one_live_task(taskid)
        if resolved is not None:
            self._cancel(resolved)

    def _cancel(self, taskid: int) -> None:
        name = self._context.backend.names_of([taskid]).get(taskid)
        answer = self._cancel_answer(taskid)
        self._sout.write(answer + "\n")
        self._audit("cancel", f"task {taskid}" + (f" ({name})" if name is not None else ""), answer)

    def _cancel_answer(self, taskid: int) -> str:
        try:
            outcome = self._context.backend.cancel(taskid, CANCEL_GRACE)
        except UnknownTask:
            return f"No task {taskid}"
        except (LoopUnresponsive, NotCancellable) as exc:
            return f"Could not cancel task {taskid}: {exc}"
        if not outcome.requested:
            return f"Task {taskid} has already finished."
        if not outcome.finished:
            return f"Cancel requested for task {taskid}; it is still running (cleaning up?)."
        if outcome.ending == "cancelled":
            return f"Cancelled task {taskid}."
        return f"Task {taskid} {outcome.ending}."

    # -- the process and its loop ------------------------------------------------

    def do_signal(self, signame: str) -> None:
        """Send a Unix signal to this process (e.g. signal SIGTERM)"""
        sig = _parse_signal(signame)
        if sig is None:
            self._sout.write(f"Unknown signal {signame}\n")
            return
        os.kill(os.getpid(), sig)
        self._sout.write(f"Sent {sig.name} to process {os.getpid()}.\n")
        self._audit("signal", sig.name, "sent")

    @alt_names("st")
    @readonly
    def do_stacktrace(self) -> None:
        """Print a stack trace from the event loop thread"""
        self._sout.write("Stack of the event loop thread (most recent call last):\n")
        self._sout.write(_format.format_stack(self._context.backend.loop_thread_stack(), self._style))

    @readonly
    def do_lag(self) -> None:
        """Show whether the event loop is responsive and its worst recent lag"""
        if not self._warn_if_blocked():
            self._sout.write("The event loop is responsive.\n")
        worst = _query.worst_lag(self._context.watchdog)
        self._sout.write(f"Worst scheduling lag seen while watched (last 60 s): {worst * 1000:.1f} ms\n")
        recorder = self._context.stall_recorder
        if recorder.started_at is None:
            self._sout.write("Stalls are not recorded (the monitor was started with stall_threshold=None).\n")
            return
        stalls = _query.recent_stalls(recorder)
        threshold = f"{recorder.threshold * 1000:.0f} ms"
        if not stalls:
            self._sout.write(f"No stall over {threshold} since the monitor started.\n")
            return
        kept = "" if recorder.count == len(stalls) else f", the last {len(stalls)} of {recorder.count} kept"
        self._sout.write(f"Stalls over {threshold} since the monitor started (worst first{kept}):\n")
        now = time.monotonic()
        for stall in sorted(stalls, key=lambda s: s.duration, reverse=True)[:LAG_STALLS]:
            self._sout.write(f"  {stall_line(stall, now)}\n")
        if len(stalls) > LAG_STALLS:
            self._sout.write(f"  ... and {len(stalls) - LAG_STALLS} shorter (doctor shows their stacks)\n")

    def _warn_if_blocked(self) -> bool:
        """Say so if the loop is not answering, naming the task running it."""
        blocked = _query.blocked_loop(self._context.backend, self._context.watchdog)
        if blocked is None:
            return False
        warning = f"WARNING: the event loop has been blocked for {blocked.blocked_for:.1f} s."
        self._sout.write(self._style.warning(warning) + "\n")
        who = f"task {blocked.task_id}" if blocked.task_id is not None else "the loop's thread (outside any task)"
        self._sout.write(f"It is running {who}; most recent call last:\n")
        self._sout.write(_format.format_stack(blocked.stack[-6:], self._style))
        self._sout.write("The information below was read without the loop's cooperation.\n")
        return True

    # -- the session ---------------------------------------------------------------

    @readonly
    def do_who(self) -> None:
        """List the clients connected to this monitor"""
        clients = _query.connected_clients(self._context.clients(), self._client)
        rows = [
            (c.peer + (" (you)" if c.is_caller else ""), c.kind, f"{c.connected_for:.0f} s", c.running or "-")
            for c in clients
        ]
        self._sout.write(_table.format_table(WHO_TABLE, rows, self._width, self._style))

    @readonly
    def do_control(self) -> None:
        """Give this session control: asks for the control password"""
        client = self._client
        if self._context.readonly:
            self._sout.write("This monitor is read-only: nothing can be controlled.\n")
            return
        if client is None or not client.readonly:
            self._sout.write("This session has control already.\n")
            return
        self._sout.write("Control password: ")
        offered = self._sin.readline().rstrip("\r\n")
        if self._context.ask_for_control(client.host, offered):
            client.readonly = False
            self._sout.write("This session has control now.\n")
            self._audit("control", "", "granted")
        else:
            self._sout.write("Wrong control password.\n")
            self._audit("control", "", "wrong password")

    def do_audit(self) -> None:
        """Show who changed what lately (a session with control only)"""
        entries = self._context.audit.entries()
        if not entries:
            self._sout.write("Nothing changed, or was refused, since the monitor started.\n")
            return
        self._sout.write("".join(entry.line() + "\n" for entry in entries))

    @alt_names("quit q")
    @readonly
    def do_exit(self) -> None:
        """Leave the monitor"""
        self._sout.write("Leaving monitor. Bye!\n")
        self._request(NextStep.EXIT)

    def do_console(self) -> None:
        """Switch to async Python REPL"""
        if not self._context.console_enabled:
            self._sout.write("Python console disabled for this session\n")
            return
        self._request(NextStep.CONSOLE)


WHO_TABLE = (
    _table.Column("Client"),
    _table.Column("Kind"),
    _table.Column("Connected", number=True),
    _table.Column("Running"),
)


@dataclass(frozen=True)
class PsOptions:
    """What ``ps`` was asked for, besides which tasks (the query)."""

    as_json: bool = False
    wide: bool = False
    #: Alike tasks folded into one row each (-g).
    grouped: bool = False
    #: Only tasks at the same line for at least this many seconds (--stuck).
    stuck: float | None = None


def _ps_options(args: tuple[str, ...]) -> tuple[PsOptions, _query.TaskQuery]:
    """(options, query) from ps's arguments; ValueError says what is wrong."""
    as_json, wide, grouped, include_own, sort, limit, filters = False, False, False, False, None, None, []
    stuck: float | None = None
    words = iter(args)
    for word in words:
        if word in ("-j", "--json"):
            as_json = True
        elif word in ("-g", "--group"):
            grouped = True
        elif word in ("-a", "--all"):
            include_own = True
        elif word in ("-w", "--wide"):
            wide = True
        elif word in ("-s", "--sort"):
            sort = next(words, "")  # checked by TaskQuery, with the same one-line message
        elif word in ("-n", "--limit"):
            count = next(words, "")
            if not count.isdigit() or len(count) > len(str(MAX_LIMIT)) or int(count) > MAX_LIMIT:
                raise ValueError(f"-n takes a number of tasks from 0 to {MAX_LIMIT:,}, not {count!r}")
            limit = int(count)
        elif word == "--stuck":
            stuck = _seconds(next(words, ""))
        else:
            filters.append(word.lower())
    if grouped and (sort is not None or limit is not None):
        raise ValueError("-g shows every group, largest first: it takes no -s or -n")
    if stuck is not None and sort is not None:
        raise ValueError("--stuck lists the longest stuck first: it takes no -s")
    return PsOptions(as_json, wide, grouped, stuck), _query.TaskQuery(tuple(filters), sort, limit, include_own)


#: The longest --stuck asks for: a year.
MAX_STUCK_SECONDS = 365 * 86400


def _seconds(word: str) -> float:
    """--stuck's seconds; ValueError (one line) for anything but a number from 0 to a year."""
    try:
        value = float(word)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_STUCK_SECONDS:  # also NaN
        raise ValueError(f"--stuck takes seconds, from 0 to {MAX_STUCK_SECONDS:,}, not {word!r}")
    return value


def _parse_signal(name: str) -> signal.Signals | None:
    if name.isdigit():
        try:
            return signal.Signals(int(name))
        except ValueError:
            return None
    upper = name.upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return signal.Signals[upper]
    except KeyError:
        return None
