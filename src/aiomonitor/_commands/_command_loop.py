"""The classic command loop of the documented API, as a mixin of ``Monitor``.

``precmd``/``postcmd``/``emptyline``/``default``, ``_getcmd``, ``_map_args``,
``_command_dispatch`` and the per-client ``_sout``/``_sin``/``lastcmd`` live
here; the Monitor adds its life cycle.  Each command line runs in a worker
thread of the server with a :class:`CommandCall` in the current context, so a
command's ``self._sout`` is the output of the client that typed it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from .._protocol import commands
from .._protocol.commands import CommandError, UnknownCommandException
from ..backends import Interrupted, LoopUnresponsive
from ._context import Client, CommandBase, CommandCall, NextStep

log = logging.getLogger("aiomonitor")


class _Discard(io.StringIO):
    """``_sout`` outside any session: accepted and dropped."""


class CommandLoop(CommandBase):
    """Resolve, convert and run command lines; the hooks a subclass overrides."""

    _cmd_prefix = commands.COMMAND_PREFIX
    _empty_result = object()

    #: The prompt a session shows before each command line.
    prompt = "monitor >>> "
    #: The greeting after login; fields ``tasknum`` (the number of tasks),
    #: ``s`` ("s" unless there is exactly one) and ``framework``.
    intro = "\n{framework} Monitor: {tasknum} task{s} running\nType help for available commands\n\n"

    _lastcmd_fallback: str | None = None
    _sout_fallback: TextIO | None = None
    _sin_fallback: TextIO | None = None

    #: 0.4's documentation spells the resolver and the mapper ``_getcmd`` and
    #: ``_map_args``, its code ``getcmd`` and ``map_args``: each pair is one
    #: method, and a subclass may override either spelling.
    _SPELLINGS = (("getcmd", "_getcmd"), ("map_args", "_map_args"))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for public, private in CommandLoop._SPELLINGS:
            if public in cls.__dict__ and private not in cls.__dict__:
                setattr(cls, private, cls.__dict__[public])
            elif private in cls.__dict__ and public not in cls.__dict__:
                setattr(cls, public, cls.__dict__[private])

    # -- what sessions call (SessionHost) ---------------------------------------

    def intro_text(self) -> str:
        """The greeting after login (worker thread: it counts tasks)."""
        backend = self._context.backend
        tasknum = backend.task_count()
        framework = backend.framework.capitalize()
        return self.intro.format(tasknum=tasknum, s="" if tasknum == 1 else "s", framework=framework)

    def run_command_line(self, client: Client, line: str) -> NextStep:
        """Run one command line for *client* (worker thread); what the session does next."""
        call = CommandCall(client)
        token = self._call_var.set(call)
        started = time.monotonic()
        try:
            self._command_dispatch(line)
        except Exception as exc:  # noqa: BLE001 - a broken hook or command must not end the session
            self._report_error("Unexpected exception during command execution", exc)
        finally:
            self._call_var.reset(token)
            self._note_stall(line, started)
        return call.next_step

    def _note_stall(self, line: str, started: float) -> None:
        """The loop's worst lateness while *line* ran, for ``cost`` (a bound from above)."""
        context = self._context
        if context.bill is not None and context.stall_recorder.started_at is not None and line.strip():
            context.bill.command_done(line.split()[0], context.stall_recorder.worst_lateness_since(started))

    # -- per-client state, resolved through the current call ----------------------

    @property
    def _sout(self) -> TextIO:
        client = self._client
        if client is not None:
            return client.output
        return self._sout_fallback or _Discard()

    @_sout.setter
    def _sout(self, stream: TextIO) -> None:
        self._sout_fallback = stream

    @property
    def _sin(self) -> TextIO:
        client = self._client
        if client is not None:
            return client.input
        return self._sin_fallback or io.StringIO()

    @_sin.setter
    def _sin(self, stream: TextIO) -> None:
        self._sin_fallback = stream

    @property
    def lastcmd(self) -> str | None:
        """The last command line entered in this session."""
        client = self._client
        return client.lastcmd if client is not None else self._lastcmd_fallback

    @lastcmd.setter
    def lastcmd(self, value: str | None) -> None:
        client = self._client
        if client is not None:
            client.lastcmd = value
        else:
            self._lastcmd_fallback = value

    # -- the classic hooks -------------------------------------------------------

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
            refusal = self._refusal(cmd)
            if refusal is not None:
                caught = CommandError(refusal)
                self._sout.write(f"{refusal}\n")
                self._audit(comm, " ".join(args), f"refused: {refusal}")
                self.postcmd(comm, mapped, result, caught)
                return
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
        submission = self._context.backend.submit(lambda: coro)
        client = self._client
        try:
            return submission.wait(self._context.hop_timeout, client.interrupted if client is not None else None)
        except (LoopUnresponsive, Interrupted) as exc:
            raise CommandError(str(exc) if isinstance(exc, LoopUnresponsive) else "interrupted") from None

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
        """The ``do_*`` method for what the user typed (also spelled ``getcmd``)."""
        method: Callable[..., Any] = getattr(self, commands.resolve(self, comm, prefix=self._cmd_prefix))
        return method

    def _map_args(self, cmd: Callable[..., Any], args: Sequence[str]) -> Iterator[Any]:
        """*args* converted for *cmd* by its annotations (also spelled ``map_args``)."""
        return commands.map_args(cmd, args)

    getcmd = _getcmd
    map_args = _map_args

    def _report_error(self, what: str, exc: Exception) -> None:
        log.exception("aiomonitor: %s", what, exc_info=exc)
        short = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4))
        self._sout.write(f"{what}: {exc!r}\n{short}")
