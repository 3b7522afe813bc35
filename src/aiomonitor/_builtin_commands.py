"""The monitor's built-in ``do_*`` commands.

They run in a worker thread of the server, read the monitored loop through
the backend (without entering it) and format with ``_format``.  Only
``cancel`` hops into the loop, with a deadline.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from . import _format
from ._protocol import commands
from ._protocol.commands import CommandError
from ._trace_commands import canceller_lines, creation_lines
from .backends import Backend, LoopUnresponsive, NotCancellable, TaskSnapshot, UnknownTask
from .utils import alt_names

if TYPE_CHECKING:
    from ._server import MonitorServer
    from ._session import Session
    from ._style import Style

#: How long ``cancel`` waits to see the task finish after asking it to.
CANCEL_GRACE = 1.0
#: Report the loop as blocked once a ping has gone unanswered this long.
BLOCKED_AFTER = 0.2


class BuiltinCommands:
    """``help``, ``ps``, ``where``, ``cancel``, ``signal``, ``stacktrace``, ``lag``,
    ``console`` and ``exit``."""

    #: Serialises CPU-heavy commands (snapshots of many tasks): fifty clients
    #: running ps at once would otherwise queue the app's loop thread behind
    #: fifty GIL-hungry threads.  Set per instance by Monitor.
    _heavy_work: threading.Lock

    if TYPE_CHECKING:
        _sout: TextIO
        _server: MonitorServer | None

        @property
        def _session(self) -> Session | None: ...

        @property
        def _width(self) -> int | None: ...

        @property
        def _style(self) -> Style: ...

        _backend: Backend
        _console_enabled: bool
        help_template: str
        help_short_template: str

    # -- help ------------------------------------------------------------------

    @alt_names("? h")
    def do_help(self, *cmd_names: str) -> None:
        """Show help for command name

        Any number of command names may be given to help, and the long help
        text for all of them will be shown.
        """
        if not cmd_names:
            self._sout.write("Available Commands are:\n\n")
            for cmd in commands.command_names(self, with_alts=False):
                self._sout.write(self._help_text(cmd.method_name, self.help_short_template) + "\n")
            return
        for name in cmd_names:
            try:
                method_name = commands.resolve(self, name)
            except CommandError as exc:
                self._sout.write(f"{exc}\n")
                continue
            self._sout.write(self._help_text(method_name, self.help_template) + "\n")

    def _help_text(self, method_name: str, template: str) -> str:
        func: Callable[..., Any] = getattr(self, method_name)
        arg_list = commands.arg_list(func)
        doc = inspect.cleandoc(func.__doc__ or "")
        text = template.format(
            cmd_name=method_name[len(commands.COMMAND_PREFIX) :],
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
    def do_ps(self, *args: str) -> None:
        """Show task table

        Usage: ps [-j] [-s id|name|state|age|busy] [-n COUNT] [FILTER...]. A
        FILTER keeps the tasks whose id, name, state, coroutine or location
        contains it (ignoring case); -s sorts (age needs trace_tasks, oldest
        first; busy needs trace_timing, busiest first);
        -n shows at most COUNT; -j prints one JSON object per line instead.
        """
        try:
            as_json, sort, limit, filters = _ps_options(args)
        except ValueError as exc:
            self._sout.write(f"{exc}\n")
            return
        self._warn_if_blocked()
        with self._heavy_work:
            self._write_ps(as_json, filters, sort, limit)

    def _write_ps(self, as_json: bool, filters: list[str], sort: str | None = None, limit: int | None = None) -> None:
        # Streamed end to end (see Backend.snapshot): no list of 100k snapshots.
        total = 0

        def selected() -> Iterator[TaskSnapshot]:
            nonlocal total
            for task in self._backend.snapshot():
                total += 1
                if not filters or _matches(task, filters):
                    yield task

        tasks: Iterable[TaskSnapshot] = selected()
        if sort is not None:  # sorting needs them all at once: only when asked for
            tasks = sorted(tasks, key=_format.TASK_SORT_KEYS[sort])
        if limit is not None:
            tasks = itertools.islice(tasks, limit)

        if as_json:
            for task in tasks:
                self._sout.write(json.dumps(_task_json(task)) + "\n")
            return
        traced, timed = self._backend.traced, self._backend.timed
        columns = _format.ps_columns(tasks, traced, timed)
        shown = f" ({len(columns[0])} shown)" if filters or limit is not None else ""
        self._sout.write(f"{_format.plural(total, 'task')}{shown}\n")
        headers = _format.PS_HEADERS + (_format.TRACE_HEADERS if traced else ())
        headers += _format.TIMING_HEADERS if timed else ()
        lines = _format.table_lines(headers, columns, self._width, self._style, state_column=1)
        for chunk in _format.batched_text(lines):
            self._sout.write(chunk)

    @alt_names("w")
    def do_where(self, taskid: int) -> None:
        """Show stack frames for a task"""
        self._warn_if_blocked()
        try:
            with self._heavy_work:
                frames = self._backend.stack(taskid)
        except UnknownTask:
            self._sout.write(f"No task {taskid}\n")
            return
        self._sout.write(f"Stack for task {taskid} (most recent call last):\n")
        stack = _format.format_stack(frames, self._style)
        self._sout.write(stack or "  No stack available (the task has not started yet?)\n")
        self._sout.write(canceller_lines("Cancellation requested by", self._backend.canceller(taskid), self._style))
        self._sout.write(creation_lines(self._backend.record(taskid)))

    def do_cancel(self, taskid: int) -> None:
        """Cancel an indicated task"""
        try:
            outcome = self._backend.cancel(taskid, CANCEL_GRACE)
        except UnknownTask:
            self._sout.write(f"No task {taskid}\n")
            return
        except (LoopUnresponsive, NotCancellable) as exc:
            self._sout.write(f"Could not cancel task {taskid}: {exc}\n")
            return
        if not outcome.requested:
            self._sout.write(f"Task {taskid} has already finished.\n")
        elif not outcome.finished:
            self._sout.write(f"Cancel requested for task {taskid}; it is still running (cleaning up?).\n")
        elif outcome.ending == "cancelled":
            self._sout.write(f"Cancelled task {taskid}.\n")
        else:
            self._sout.write(f"Task {taskid} {outcome.ending}.\n")

    # -- the process and its loop ------------------------------------------------

    def do_signal(self, signame: str) -> None:
        """Send a Unix signal to this process (e.g. signal SIGTERM)"""
        sig = _parse_signal(signame)
        if sig is None:
            self._sout.write(f"Unknown signal {signame}\n")
            return
        os.kill(os.getpid(), sig)
        self._sout.write(f"Sent {sig.name} to process {os.getpid()}.\n")

    @alt_names("st")
    def do_stacktrace(self) -> None:
        """Print a stack trace from the event loop thread"""
        self._sout.write("Stack of the event loop thread (most recent call last):\n")
        self._sout.write(_format.format_stack(self._backend.loop_thread_stack(), self._style))

    def do_lag(self) -> None:
        """Show whether the event loop is responsive and its worst recent lag"""
        if not self._warn_if_blocked():
            self._sout.write("The event loop is responsive.\n")
        if self._server is not None:
            worst = self._server.watchdog.worst_lag()
            self._sout.write(f"Worst scheduling lag seen while watched (last 60 s): {worst * 1000:.1f} ms\n")

    def _warn_if_blocked(self) -> bool:
        """Say so if the loop is not answering, naming the task running it."""
        if self._server is None:
            return False
        blocked_for = self._server.watchdog.probe()
        if blocked_for < BLOCKED_AFTER:
            return False
        warning = f"WARNING: the event loop has been blocked for {blocked_for:.1f} s."
        self._sout.write(self._style.warning(warning) + "\n")
        current = self._backend.current_task_id()
        stack = self._backend.stack(current) if current is not None else self._backend.loop_thread_stack()
        who = f"task {current}" if current is not None else "the loop's thread (outside any task)"
        self._sout.write(f"It is running {who}; most recent call last:\n")
        self._sout.write(_format.format_stack(stack[-6:], self._style))
        self._sout.write("The information below was read without the loop's cooperation.\n")
        return True

    # -- the session ---------------------------------------------------------------

    def do_who(self) -> None:
        """List the clients connected to this monitor"""
        sessions = self._server.sessions() if self._server is not None else []
        now = time.monotonic()
        rows = [
            (
                s.peer + (" (you)" if s is self._session else ""),
                s.kind,
                f"{now - s.connected_at:.0f} s",
                s.running or "-",
            )
            for s in sorted(sessions, key=lambda s: s.connected_at)
        ]
        self._sout.write(_format.format_table(("Client", "Kind", "Connected", "Running"), rows, None, self._style))

    @alt_names("quit q")
    def do_exit(self) -> None:
        """Leave the monitor"""
        self._sout.write("Leaving monitor. Bye!\n")
        if self._session is not None:
            self._session.exit_requested = True

    def do_console(self) -> None:
        """Switch to async Python REPL"""
        if not self._console_enabled:
            self._sout.write("Python console disabled for this session\n")
            return
        if self._session is not None:
            self._session.console_requested = True


def _matches(task: TaskSnapshot, filters: list[str]) -> bool:
    haystack = f"{task.id} {task.name} {task.state} {task.coro} {_format.format_location(task.location)}".lower()
    return all(f in haystack for f in filters)


def _ps_options(args: tuple[str, ...]) -> tuple[bool, str | None, int | None, list[str]]:
    """(json, sort key, limit, filters) from ps's arguments; ValueError says what is wrong."""
    as_json, sort, limit, filters = False, None, None, []
    words = iter(args)
    for word in words:
        if word in ("-j", "--json"):
            as_json = True
        elif word in ("-s", "--sort"):
            sort = next(words, "")
            if sort not in _format.TASK_SORT_KEYS:
                raise ValueError(f"Sort by one of {', '.join(_format.TASK_SORT_KEYS)}, not {sort!r}")
        elif word in ("-n", "--limit"):
            count = next(words, "")
            if not count.isdigit():
                raise ValueError(f"-n takes a number of tasks, not {count!r}")
            limit = int(count)
        else:
            filters.append(word.lower())
    return as_json, sort, limit, filters


def _task_json(task: TaskSnapshot) -> dict[str, Any]:
    location = task.location
    return {
        "id": task.id,
        "name": task.name,
        "state": task.state,
        "coro": task.coro,
        "location": None
        if location is None
        else {"file": location.filename, "line": location.lineno, "function": location.name},
        "parent_id": task.parent_id,
        "created": None if task.created is None else list(task.created),
        "creator_id": task.creator_id,
        "age": None if task.created_at is None else time.monotonic() - task.created_at,
        "steps": task.steps,
        "busy": task.busy,
        "longest_step": task.longest_step,
    }


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
