"""A raw-socket telnet client: the bytes a telnet or ``nc`` user would send,
read up to markers with deadlines, linear in what arrives (answers run to
megabytes).

Shared by the tests (``tests/support/helpers.py``) and the attack kit
(``attacks.py``), which the hostile tests and ``hostile.py`` both run.
"""

from __future__ import annotations

import socket
import time

PROMPT = b"monitor >>> "
CONSOLE_PROMPT = b">>> "
DEADLINE = 15.0


class Client:
    """One connection to a monitor, reading up to markers with deadlines."""

    def __init__(self, port: int | None = None, *, path: str | None = None, host: str = "127.0.0.1") -> None:
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
        else:
            assert port is not None
            self.sock = socket.create_connection((host, port), timeout=DEADLINE)
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; received so far: {bytes(self.buffer[-2000:])!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            raise AssertionError(f"timed out; received so far: {bytes(self.buffer[-2000:])!r}") from None
        if not data:
            self.eof = True
        self.buffer += data

    def read_until(self, marker: bytes, timeout: float = DEADLINE) -> bytes:
        """Everything up to and including *marker* (linear in what arrives: answers are megabytes)."""
        deadline = time.monotonic() + timeout
        searched = 0
        while (found := self.buffer.find(marker, searched)) < 0:
            if self.eof:
                raise AssertionError(f"connection closed before {marker!r}; got {bytes(self.buffer[-2000:])!r}")
            searched = max(0, len(self.buffer) - len(marker) + 1)
            self._fill(deadline)
        end = found + len(marker)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def read_to_eof(self, timeout: float = DEADLINE) -> bytes:
        deadline = time.monotonic() + timeout
        while not self.eof:
            self._fill(deadline)
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def start(self, prompt: bytes = PROMPT) -> str:
        """Read the greeting up to the first prompt."""
        return text(self.read_until(prompt))

    def command(self, line: str, prompt: bytes = PROMPT, timeout: float = DEADLINE) -> str:
        """Send one line (as telnet does, CR LF) and return the output before the next prompt."""
        self.send(line.encode() + b"\r\n")
        return text(self.read_until(prompt, timeout))[: -len(prompt)]


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")
