"""The listening sockets: bound in the caller's thread, accepted from in the server's.

Binding before the server thread exists turns "port in use" into a prompt
``OSError`` from ``start()``, with nothing half-started to clean up.  The
accept loop takes whatever the kernel has queued, at once (see ``_door``
for why accepting is never what is paced); the telnet and web listeners
share it.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import secrets
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

log = logging.getLogger("aiomonitor")

_BACKLOG = 64
#: Connections taken from the kernel per wake-up, before other tasks run.
ACCEPT_BATCH = 64
#: An accept that fails (EMFILE: the process is out of descriptors) is retried
#: after this long, and logged at most once per ACCEPT_LOG_INTERVAL.
ACCEPT_RETRY = 0.1
ACCEPT_LOG_INTERVAL = 60.0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it resolves to who knows what
        return False


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    if not is_loopback(host):
        log.warning(
            "aiomonitor: listening on %s:%d, reachable from other machines. Anyone who "
            "connects can run code in this process; prefer 127.0.0.1 or a password.",
            host,
            port,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # create_server sets SO_REUSEADDR on POSIX: a restarted app can rebind at
    # once, while a port another process listens on still fails.
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


def bind_tcp_or_free(host: str, port: int, *, fallback: bool) -> tuple[socket.socket, bool]:
    """``bind_tcp``; with *fallback*, a free port when *port* is taken.

    The flag says whether it fell back.  For the workers of one pool, which
    all start from the same settings: the first gets the port, the others
    one each of their own (``aiomonitor ls`` finds every one).
    """
    try:
        return bind_tcp(host, port), False
    except OSError as exc:
        if not fallback or port == 0 or exc.errno != errno.EADDRINUSE:
            raise
    sock = bind_tcp(host, 0)
    log.warning(
        "aiomonitor: port %d is taken (by a sibling worker?); listening on %d instead (see: aiomonitor ls)",
        port,
        sock.getsockname()[1],
    )
    return sock, True


def bind_unix(path: str) -> socket.socket:
    """A listening unix socket at *path* that only our user can connect to.

    Bound under a temporary name, restricted to 0600, then renamed into place,
    so there is no moment when others could connect.
    """
    _remove_stale_socket(path)
    temporary = f"{path}.{secrets.token_hex(4)}.tmp"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(temporary)
        os.chmod(temporary, 0o600)
        os.rename(temporary, path)
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return sock


def _remove_stale_socket(path: str) -> None:
    """Unlink a socket left by a crashed run; refuse a live one or a non-socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
            return
    raise OSError(errno.EADDRINUSE, f"another process is listening on {path}")


def describe(sock: socket.socket) -> str:
    """``host:port`` or the unix path, for messages."""
    address = sock.getsockname()
    if isinstance(address, str):
        return address
    return f"{address[0]}:{address[1]}"


class AcceptFailures:
    """Failed accepts (EMFILE: the process is out of descriptors), logged at
    most once per ACCEPT_LOG_INTERVAL with the count since the last report."""

    def __init__(self) -> None:
        self._count = 0
        self._logged_at = -ACCEPT_LOG_INTERVAL

    def note(self, exc: OSError) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at >= ACCEPT_LOG_INTERVAL:
            log.warning("aiomonitor: accept failed (%d time(s) since the last report): %s", self._count, exc)
            self._count, self._logged_at = 0, now


async def accept_forever(
    listener: socket.socket,
    arrived: Callable[[socket.socket, Any], Awaitable[None]],
    failures: AcceptFailures,
) -> None:
    """Take what the kernel has queued on *listener*, in batches, until it is
    closed; each connection goes to *arrived*.  Server thread only."""
    listener.setblocking(False)
    while True:
        try:
            await anyio.wait_readable(listener)
        except anyio.ClosedResourceError:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):  # drained (or another process took it)
                break
            except OSError as exc:  # EMFILE and friends: back off, keep listening
                failures.note(exc)
                await anyio.sleep(ACCEPT_RETRY)
                break
            await arrived(sock, address)
        await anyio.sleep(0)  # let sessions run between batches


def describe_peer(address: Any) -> tuple[str, str]:
    """``host:port`` for ``who`` and the log, and the host that failed logins are counted by."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return (f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"), host
    # A unix socket's peer has no address: every local client is one "host".
    return "local", "local"
