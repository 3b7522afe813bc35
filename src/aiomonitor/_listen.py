"""Binding the monitor's listening sockets, in the caller's thread.

Binding before the server thread exists turns "port in use" into a prompt
``OSError`` from ``start()``, with nothing half-started to clean up.
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

log = logging.getLogger("aiomonitor")

_BACKLOG = 64


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
