"""The ``aiomonitor`` program: connect, run commands, list, run, attach.

::

    aiomonitor [-H HOST] [-p PORT | -u PATH | -P PID|NAME] [--console]   a session
    aiomonitor -P PID|NAME -c "ps -j"          one command, then exit (every worker, for a service)
    aiomonitor --all -c "ps -n 5 -s busy"      one command on every monitor here
    aiomonitor ls [-j]                         the monitors running on this host
    aiomonitor dump [-P PID|NAME | -p PORT | -u PATH] [-o FILE]   a process's tasks, to one JSON file
    aiomonitor open FILE [-c LINE] [--web]     the read-only commands on that file
    aiomonitor run [options] [--] script.py args...  |  run [options] -m module args...
    aiomonitor attach PID                      (Python 3.14+) into a running process

A password is never taken from the command line, where ``ps`` shows it to
every user: it comes from ``AIOMONITOR_PASSWORD`` or a prompt.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import shutil
import sys
import threading
from pathlib import Path

from .. import _registry
from .._registry import CONTROL_PASSWORD_ENV, PASSWORD_ENV
from .._version import __version__
from . import _fleet, _oneshot
from . import _interactive as _client

DEFAULT_PORT = 50101
DEFAULT_CONSOLE_PORT = 50102


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["run"]:
        # A client started by a followed service is no worker of it (nor are its children).
        from .._launch._follow import stop_following

        stop_following()
    if argv[:1] == ["run"]:  # the program's own errors are its own: nothing is caught around it
        from .._launch._run import main as run_main

        return run_main(argv[1:])
    try:
        if argv[:1] == ["ls"]:
            return _ls(argv[1:])
        if argv[:1] == ["dump"]:
            return _dump(argv[1:])
        if argv[:1] == ["open"]:
            return _open(argv[1:])
        if argv[:1] == ["attach"]:
            from .._launch._attach import main as attach_main

            return attach_main(argv[1:])
        return _connect(argv)
    except BrokenPipeError:
        # Whoever read our output left (``aiomonitor -c ps | head``): not a
        # failure of ours.  Point stdout at nothing, so the flush at exit
        # does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def password_for(needed: bool) -> str | None:
    """``$AIOMONITOR_CONTROL_PASSWORD`` (it opens a session with control), else
    ``$AIOMONITOR_PASSWORD``, else a prompt when *needed* and someone can type."""
    for variable in (CONTROL_PASSWORD_ENV, PASSWORD_ENV):
        if os.environ.get(variable) is not None:
            return os.environ[variable]
    if needed and sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return None


def _fail(message: str) -> int:
    print(f"aiomonitor: {message}", file=sys.stderr)
    return 1


def _ls(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aiomonitor ls", description="List the monitors running on this host.")
    parser.add_argument("-j", "--json", action="store_true", help="one JSON object per monitor")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each task count")
    args = parser.parse_args(argv)
    try:
        entries = _registry.live_entries()
    except OSError as exc:
        return _fail(f"cannot read the registry: {exc}")
    password = password_for(False)
    return _fleet.list_monitors(entries, password=password, timeout=args.timeout, as_json=args.json, out=sys.stdout)


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-H", "--host", default="127.0.0.1", help="host (default: %(default)s)")
    parser.add_argument("-p", "--port", type=int, default=None, help="port (default: 50101)")
    parser.add_argument("-u", "--unix", metavar="PATH", help="a unix socket instead")
    parser.add_argument("-P", "--pid", metavar="PID|NAME", help="the monitor of this process (see 'aiomonitor ls')")


def _targets(args: argparse.Namespace) -> list[tuple[_registry.Address, str, bool]]:
    """(address, prompt, needs a password) of each monitor -P, -u or -p names
    (each process of a service -P names); ``NotFound`` or ``OSError`` when none."""
    if args.pid:
        entries = _registry.live_entries()
        members = _fleet.service_of(args.pid, entries) or [_registry.find(args.pid, entries)]
        return [(entry.monitor, entry.prompt, entry.password) for entry in members]
    if args.unix:
        return [(_registry.Address(path=args.unix), _oneshot.DEFAULT_PROMPT, False)]
    port = args.port if args.port is not None else DEFAULT_PORT
    return [(_registry.Address(args.host, port), _oneshot.DEFAULT_PROMPT, False)]


def _dump(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aiomonitor dump",
        description="Write a running process's tasks (stacks, waits, creation chains, stalls, doctor's "
        "findings) to one JSON file, and print its path; 'aiomonitor open FILE' reads it back.",
    )
    _target_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="where (default: aiomonitor-PID-DATE-TIME.json here)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the bundle")
    args = parser.parse_args(argv)
    if sum((args.pid is not None, args.unix is not None, args.port is not None)) > 1:
        parser.error("give one of -P, -u and -p")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:
        targets = _targets(args)
    except (OSError, _registry.NotFound) as exc:
        return _fail(str(exc))
    if args.output and len(targets) > 1:
        return _fail(f"{args.pid!r} is a service of {len(targets)} processes: one file each, so no -o")
    password = password_for(any(needed for _, _, needed in targets))
    status = 0
    for address, prompt, _ in targets:
        try:
            text = _oneshot.run_line(address, "dump", prompt=prompt, password=password, timeout=args.timeout)
            path = _oneshot.save_bundle(text, args.output)
        except _oneshot.NoAnswer as exc:
            status = _fail(f"{address}: {_oneshot.reason(exc, args.timeout)}")
            continue
        except (OSError, ValueError) as exc:
            status = _fail(f"{address}: {exc}")
            continue
        print(path)
    return status


def _open(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="aiomonitor open",
        description="Run the read-only commands (ps, pstree, where, ended, doctor, lag...) on a bundle "
        "that 'aiomonitor dump' (or a monitor's dump_dir) wrote.",
    )
    parser.add_argument("file", help="the bundle (a .json file)")
    parser.add_argument("-c", "--command", metavar="LINE", help="run one command, print its output, exit")
    parser.add_argument("--web", action="store_true", help="serve the web dashboard on it instead (until Ctrl-C)")
    parser.add_argument("--web-port", type=int, default=0, metavar="PORT", help="with --web (default: a free one)")
    parser.add_argument("--plain", action="store_true", help="use readline instead of prompt_toolkit")
    parser.add_argument("--no-color", action="store_true", help="plain output (also when NO_COLOR is set)")
    args = parser.parse_args(argv)
    if args.web and args.command:
        parser.error("--web serves the dashboard; -c runs one command: give one")
    from .._launch._open import open_bundle, read_bundle

    try:
        bundle = read_bundle(args.file)  # a damaged file: ValueError (BadBundle), one line
        monitor, directory = open_bundle(bundle, args.web_port if args.web else None)
    except ValueError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot serve the bundle: {exc}")
    try:
        address = _registry.Address(path=os.path.join(directory.name, "monitor.sock"))
        if args.command:
            return _one_command(address, args.command, _oneshot.DEFAULT_PROMPT, False, 60.0)
        if args.web:
            print(f"The dashboard on {args.file}: {monitor.web_url} (Ctrl-C ends it)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return 0
        return _client.session(address, plain=args.plain, history=None, no_colour=args.no_color)
    finally:
        monitor.close()
        directory.cleanup()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiomonitor",
        description="Connect to a running aiomonitor, or run one command on it.",
        epilog="Also: 'aiomonitor ls', 'aiomonitor run [--] script.py', 'aiomonitor dump', 'aiomonitor open FILE', "
        "'aiomonitor attach PID'. "
        f"A password comes from ${CONTROL_PASSWORD_ENV}, ${PASSWORD_ENV} or a prompt.",
    )
    parser.add_argument("-H", "--host", default="127.0.0.1", help="host (default: %(default)s)")
    parser.add_argument("-p", "--port", type=int, default=None, help="port (default: 50101, or 50102 with --console)")
    parser.add_argument("-u", "--unix", metavar="PATH", help="connect to a unix socket instead")
    parser.add_argument("-P", "--pid", metavar="PID|NAME", help="the monitor of this process (see 'aiomonitor ls')")
    parser.add_argument("--console", action="store_true", help="connect to the Python console instead")
    parser.add_argument("-c", "--command", metavar="LINE", help="run one monitor command, print its output, exit")
    parser.add_argument("--all", action="store_true", help="with -c: run it on every monitor 'aiomonitor ls' lists")
    parser.add_argument(
        "--prefix", action="store_true", help="with --all (or -P naming a service): prefix each line with its pid"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="with -c: seconds to wait for an answer")
    parser.add_argument("--no-history", action="store_true", help=f"do not read or write {_client.HISTORY_FILE}")
    parser.add_argument("--plain", action="store_true", help="use readline instead of prompt_toolkit")
    parser.add_argument("--no-color", action="store_true", help="plain output (also when NO_COLOR is set)")
    parser.add_argument("--version", action="version", version=f"aiomonitor {__version__}")
    return parser


def _connect(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.all:
        if not args.command:
            parser.error("--all needs -c LINE")
        if args.pid or args.unix or args.console:
            parser.error("--all goes to every monitor: it takes no -P, -u or --console")
        return _everywhere(args.command, args.timeout, args.prefix)
    if sum((args.pid is not None, args.unix is not None, args.port is not None)) > 1:
        parser.error("give one of -P, -u and -p")
    if args.command and args.console:
        parser.error("-c runs monitor commands; the console is interactive (drop --console)")
    prompt = _oneshot.DEFAULT_PROMPT
    needs_password = False
    if args.pid:
        try:
            entries = _registry.live_entries()
            service = _fleet.service_of(args.pid, entries)
            if service is not None:
                return _whole_service(args.pid, service, args.command, args.timeout, args.prefix)
            entry = _registry.find(args.pid, entries)
        except (OSError, _registry.NotFound) as exc:
            return _fail(str(exc))
        if args.console and entry.console is None:
            return _fail(f"process {entry.pid}'s monitor has no console")
        address = entry.console if args.console and entry.console else entry.monitor
        prompt, needs_password = entry.prompt, entry.password
    elif args.unix:
        address = _registry.Address(path=args.unix)
    else:
        default = DEFAULT_CONSOLE_PORT if args.console else DEFAULT_PORT
        address = _registry.Address(args.host, args.port if args.port is not None else default)
    if args.command:
        return _one_command(address, args.command, prompt, needs_password, args.timeout)
    history = None if args.no_history else Path(os.environ.get("AIOMONITOR_HISTORY", _client.HISTORY_FILE))
    completion = None
    if not args.console:  # Tab asks the monitor itself, with the password only from the environment
        completion = _client.ServerQueries(address, password=os.environ.get(PASSWORD_ENV), prompt=prompt)
    return _client.session(address, plain=args.plain, history=history, no_colour=args.no_color, completion=completion)


def _one_command(address: _registry.Address, line: str, prompt: str, needs_password: bool, timeout: float) -> int:
    password = password_for(needs_password)
    for attempt in range(2):
        try:
            output = _oneshot.run_line(
                address, line, prompt=prompt, password=password, timeout=timeout, columns=_output_columns()
            )
        except _oneshot.PasswordNeeded as exc:
            if attempt or password is not None or not sys.stdin.isatty():
                return _fail(str(exc))
            password = password_for(True)  # learned only now that it asks
            continue
        except _oneshot.NoAnswer as exc:
            return _fail(f"{address}: {_oneshot.reason(exc, timeout)}")
        except ValueError as exc:
            return _fail(str(exc))
        sys.stdout.write(output)
        sys.stdout.flush()
        cut = _oneshot.cut_reason(output)
        return 0 if cut is None else _fail(f"{address}: {cut}")
    return 1


def _whole_service(
    selector: str, members: list[_registry.Entry], line: str | None, timeout: float, prefix: bool
) -> int:
    """``-P`` named a service (its supervisor's pid, or its name): ``-c`` asks
    each of its processes; a session needs one of them."""
    pids = ", ".join(str(entry.pid) for entry in members)
    if not line:
        return _fail(f"{selector!r} is a service of {len(members)} monitored processes ({pids}): give one pid")
    problem = _oneshot.refusal(line)
    if problem is not None:
        return _fail(problem)
    password = password_for(any(entry.password for entry in members))
    return _fleet.run_everywhere(
        members, line, password=password, timeout=timeout, prefix=prefix, out=sys.stdout, err=sys.stderr
    )


def _output_columns() -> int:
    """A terminal's width when a person reads the output, else no limit."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else _oneshot.UNLIMITED_COLUMNS


def _everywhere(line: str, timeout: float, prefix: bool) -> int:
    problem = _oneshot.refusal(line)
    if problem is not None:
        return _fail(problem)
    try:
        entries = _registry.live_entries()
    except OSError as exc:
        return _fail(f"cannot read the registry: {exc}")
    if not entries:
        return _fail("no running monitors found")
    password = password_for(any(entry.password for entry in entries))
    return _fleet.run_everywhere(
        entries, line, password=password, timeout=timeout, prefix=prefix, out=sys.stdout, err=sys.stderr
    )
