"""Where running monitors announce themselves, so ``aiomonitor ls`` and ``-P``
find them without anyone remembering a port.

One JSON file per started Monitor in a per-user directory:
``$AIOMONITOR_RUNTIME_DIR`` if set, else ``$XDG_RUNTIME_DIR/aiomonitor``,
else ``aiomonitor-<uid>`` in the temporary directory.  The directory is
created 0700 and refused when it is a symlink, belongs to someone else, or
others could read it: an entry tells where a console that runs code in the
process listens, and a directory another user controls could point our
client at their listener.

Writers replace a file atomically (a private temporary name, then
``os.replace``), so a reader sees a whole entry or none.  Nothing removes the
entry of a process killed with ``kill -9``; readers skip entries whose
process is gone (or whose pid now belongs to a newer process, told apart by
the start time the kernel keeps) and delete them.

Nothing here runs in the monitored loop; registering costs one small file
write in ``Monitor.start()``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._version import __version__

#: Where the client, `run` and `attach` find a monitor's password: never on the command line.
PASSWORD_ENV = "AIOMONITOR_PASSWORD"  # noqa: S105 - the variable's name
#: Likewise the control password (a monitor with ``control_password``): the
#: client logs in with it when it is set, and ``run`` passes it on.
CONTROL_PASSWORD_ENV = "AIOMONITOR_CONTROL_PASSWORD"  # noqa: S105 - the variable's name

log = logging.getLogger("aiomonitor")

ENV_DIR = "AIOMONITOR_RUNTIME_DIR"
#: Set by ``aiomonitor run`` for the program and every process it starts:
#: the service they belong to (see ``Service``), so each entry says which.
SERVICE_ENV = "AIOMONITOR_SERVICE"
#: Bumped when a field changes meaning; readers skip entries of other versions.
#: (Fields added since, ``parent``, ``service`` and ``taken_ports``, are
#: optional: an older reader ignores them and a newer one does without.)
FORMAT = 1


class UnsafeRegistry(OSError):
    """The registry directory exists but could be read or written by others."""


def registry_dir() -> Path:
    """The per-user directory, created if missing; ``UnsafeRegistry`` if it is not ours alone."""
    if os.environ.get(ENV_DIR):
        path = Path(os.environ[ENV_DIR])
    elif os.environ.get("XDG_RUNTIME_DIR") and os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "aiomonitor"
    else:
        path = Path(tempfile.gettempdir()) / f"aiomonitor-{_uid()}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRegistry(f"{path} is not a directory (a symlink?)")
    if not hasattr(os, "getuid"):  # Windows: a per-user temp directory and its ACLs are all we have
        return path
    if info.st_uid != os.getuid():
        raise UnsafeRegistry(f"{path} belongs to uid {info.st_uid}, not to us")
    if info.st_mode & 0o077:
        raise UnsafeRegistry(f"{path} can be read by others (mode {stat.S_IMODE(info.st_mode):o}); chmod 700 it")
    return path


def _uid() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def process_start(pid: int) -> str | None:
    """When *pid* started, in the kernel's clock ticks since boot (Linux), else None.

    Tells a live process apart from a newer one that was given a dead one's pid.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the name: state is field 3, starttime field 22 (proc(5)).
    return fields[19].decode() if len(fields) > 19 else None


def _is_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now has that pid
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            state = file.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal test is all we have
    if state in (b"Z", b"X"):  # exited, not yet reaped by its parent
        return False
    return started is None or process_start(pid) == started


@dataclass(frozen=True)
class Address:
    """Where a listener is: a TCP host and port, or a unix socket path."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def of(cls, host: str, port: int, path: str | None) -> Address:
        """The unix socket when there is one (a monitor listens there instead), else host and port."""
        return cls(path=path) if path else cls(host, port)

    def __str__(self) -> str:
        return self.path if self.path else f"{self.host}:{self.port}"

    def connectable_host(self) -> str:
        """The host to connect to: a wildcard bind is reached on loopback."""
        if self.host in (None, "", "0.0.0.0"):
            return "127.0.0.1"
        return "::1" if self.host == "::" else self.host

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path} if self.path else {"host": self.host, "port": self.port}

    @classmethod
    def from_json(cls, data: Any) -> Address | None:
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("path"), str):
            return cls(path=data["path"])
        if isinstance(data.get("host"), str) and isinstance(data.get("port"), int):
            return cls(host=data["host"], port=data["port"])
        return None


@dataclass(frozen=True)
class Service:
    """The program ``aiomonitor run`` started, whose processes all belong to it.

    Its process may run no loop (uvicorn's and gunicorn's supervisors don't),
    so it may have no entry of its own: its workers' entries carry it.
    """

    pid: int
    #: What people call it (``uvicorn``, ``gunicorn``, the script's name), and its whole command line.
    name: str
    program: str
    #: When it started (``time.time()``).
    started: float

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "name": self.name, "program": self.program, "started": self.started}

    @classmethod
    def from_json(cls, data: Any) -> Service | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(int(data["pid"]), str(data["name"]), str(data["program"]), float(data["started"]))
        except (KeyError, TypeError, ValueError):
            return None

    def export(self) -> None:
        """Make this the service of this process and of every process it starts."""
        os.environ[SERVICE_ENV] = json.dumps(self.to_json())


def current_service() -> Service | None:
    """The service this process belongs to (``$AIOMONITOR_SERVICE``), if any; a damaged value is none."""
    text = os.environ.get(SERVICE_ENV)
    if not text:
        return None
    try:
        return Service.from_json(json.loads(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class Entry:
    """One running monitor, as its process described it."""

    pid: int
    program: str
    argv: tuple[str, ...]
    framework: str
    monitor: Address
    console: Address | None
    password: bool
    prompt: str
    started: float
    version: str
    #: The process that started this one (None: not known, an older entry).
    parent: int | None = None
    #: The service this process is part of (``aiomonitor run``), if any.
    service: Service | None = None
    #: Ports asked for but found taken (by a sibling worker), by listener:
    #: the monitor listens on a free one instead (``port_fallback``).
    taken_ports: tuple[tuple[str, int], ...] = ()

    def uptime(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.started)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "pid": self.pid,
            "program": self.program,
            "argv": list(self.argv),
            "framework": self.framework,
            "monitor": self.monitor.to_json(),
            "console": self.console.to_json() if self.console else None,
            "password": self.password,
            "prompt": self.prompt,
            "started": self.started,
            "version": self.version,
            "parent": self.parent,
            "service": self.service.to_json() if self.service else None,
            "taken_ports": dict(self.taken_ports),
        }

    @classmethod
    def from_json(cls, data: Any) -> Entry | None:
        """The entry, or None for a file of another format or a damaged one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        monitor = Address.from_json(data.get("monitor"))
        try:
            argv = tuple(str(arg) for arg in data["argv"])
            parent = data.get("parent")
            taken = data.get("taken_ports")
            taken_ports = tuple((str(name), int(port)) for name, port in (taken or {}).items())
            entry = cls(
                pid=int(data["pid"]),
                program=str(data["program"]),
                argv=argv,
                framework=str(data["framework"]),
                monitor=monitor or Address(),
                console=Address.from_json(data.get("console")),
                password=bool(data["password"]),
                prompt=str(data["prompt"]),
                started=float(data["started"]),
                version=str(data["version"]),
                parent=parent if isinstance(parent, int) and not isinstance(parent, bool) else None,
                service=Service.from_json(data.get("service")),
                taken_ports=taken_ports,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return entry if monitor is not None else None


def program_name(argv0: str) -> str:
    """What people call the program: the script's name, or for ``python -m
    PACKAGE`` (whose ``argv[0]`` is ``PACKAGE/__main__.py``) the package's."""
    base = os.path.basename(argv0)
    if base == "__main__.py":
        return os.path.basename(os.path.dirname(argv0)) or base
    return base


def this_process(
    *,
    framework: str,
    monitor: Address,
    console: Address | None,
    password: bool,
    prompt: str,
    taken_ports: tuple[tuple[str, int], ...] = (),
) -> Entry:
    """The entry for a monitor of this process, started now."""
    argv = sys.argv if sys.argv and sys.argv[0] else getattr(sys, "orig_argv", ["python"])
    return Entry(
        pid=os.getpid(),
        program=" ".join([program_name(argv[0]), *argv[1:]]),
        argv=tuple(argv),
        framework=framework,
        monitor=monitor,
        console=console,
        password=password,
        prompt=prompt,
        started=time.time(),
        version=__version__,
        parent=os.getppid(),
        service=current_service(),
        taken_ports=taken_ports,
    )


class Registration:
    """One monitor's file; ``remove()`` is idempotent and only ever done by
    the process that wrote it (a forked child inherits the object, not the entry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._owner = os.getpid()

    def remove(self) -> None:
        if os.getpid() != self._owner:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()

    def withdraw(self) -> None:
        """Remove the entry now, and forget the removal at exit."""
        self.remove()
        atexit.unregister(self.remove)


def register(entry: Entry) -> Registration:
    """Write *entry* atomically; ``OSError`` (``UnsafeRegistry`` included) if it can't be."""
    directory = registry_dir()
    record = dict(entry.to_json(), proc_start=process_start(entry.pid))
    final = directory / f"{entry.pid}-{secrets.token_hex(4)}.json"
    write_private_file(final, [json.dumps(record)])
    return Registration(final)


def write_private_file(path: str | os.PathLike[str], pieces: Iterable[str], encoding: str = "utf-8") -> None:
    """Write *pieces* to *path* whole or not at all, readable by this user only.

    A temporary file beside it (``mkstemp``: mode 0600) is renamed over
    *path* once written, so a reader never sees half a file; on any error
    the temporary file goes and the error is raised.  Registry entries and
    dump bundles both hold what other users must not read.
    """
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".aiomonitor-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding=encoding) as file:
            for piece in pieces:
                file.write(piece)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def announce(entry: Entry) -> Registration | None:
    """``register``, removed again at exit (for apps that never close their
    monitor); a failure is logged and costs only the listing."""
    try:
        registration = register(entry)
    except OSError as exc:
        log.warning("aiomonitor: not listed for 'aiomonitor ls': %s", exc)
        return None
    atexit.register(registration.remove)
    return registration


def live_entries() -> list[Entry]:
    """Every monitor whose process still runs, oldest first; the others' files are deleted."""
    directory = registry_dir()
    entries: list[Entry] = []
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # removed meanwhile, or not ours to judge
        entry = Entry.from_json(data)
        if entry is None:
            continue
        started = data.get("proc_start")
        if _is_alive(entry.pid, started if isinstance(started, str) else None):
            entries.append(entry)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    entries.sort(key=lambda entry: (entry.started, entry.pid))
    return entries


class NotFound(LookupError):
    """No monitor, or several, match what the user asked for (message says which)."""


def find(selector: str, entries: list[Entry]) -> Entry:
    """The entry for a pid, or for a unique match in the program's command line."""
    if selector.isdigit():
        matches = [entry for entry in entries if entry.pid == int(selector)]
        if not matches:
            raise NotFound(f"no monitor in process {selector} (see: aiomonitor ls)")
    else:
        matches = [entry for entry in entries if selector in entry.program]
        if not matches:
            raise NotFound(f"no monitored program matches {selector!r} (see: aiomonitor ls)")
        pids = sorted({entry.pid for entry in matches})
        if len(pids) > 1:
            raise NotFound(f"{selector!r} matches processes {', '.join(map(str, pids))}; give a pid")
    return matches[0]
