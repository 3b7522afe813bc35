"""The text streams a session's commands see as ``self._sout`` and ``self._sin``.

Commands run in worker threads, console statements in the monitored loop's
thread, and the session itself in the server thread; all of them write to one
:class:`SessionOutput`.  It is a bounded buffer: a client that stops reading
slows down (then loses) its own commands, never the app or other clients.
"""

from __future__ import annotations

import collections
import io
import threading
import time
from collections.abc import Callable, Sequence

from ._heavy import output_turn
from ._protocol.telnet import encode_output

#: Above this many buffered bytes a writing command waits for the client.
HIGH_WATER = 1 << 20
#: Writers that must not wait (the app's loop, the server) drop output past this.
HARD_LIMIT = 8 << 20


class SessionOutput(io.TextIOBase):
    """A thread-safe text sink, drained by the session's writer task.

    ``write`` may block a worker thread while the client catches up, but never
    blocks a thread listed in ``nonblocking_threads`` (the server's own thread
    and the monitored loop's): there it buffers up to :data:`HARD_LIMIT` and
    then drops, marking the loss once.
    """

    def __init__(
        self,
        wake: Callable[[], None],
        nonblocking_threads: Callable[[], set[int | None]],
        on_stall: Callable[[], None],
        stall_timeout: float,
    ) -> None:
        super().__init__()
        self._wake = wake
        self._nonblocking_threads = nonblocking_threads
        self._on_stall = on_stall
        self._stall_timeout = stall_timeout
        self._cond = threading.Condition()
        # Pieces as written, not one bytearray: fifty clients sharing one
        # ``ps`` share its bytes, where each used to copy them three times
        # (in, out, and to bytes), GIL held (see ``take``).
        self._pieces: collections.deque[bytes | memoryview] = collections.deque()
        self._size = 0
        self._wake_pending = False
        self._truncated = False
        self._shut = False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.write_encoded(encode_output(s))
        return len(s)

    def write_encoded(self, data: bytes) -> None:
        """Write text already encoded for the client (``encode_output``).

        Heavy commands encode their output once, under the heavy section,
        and share it between clients: fifty clients each encoding the same
        megabyte kept the app's loop waiting for the GIL (90 ms measured).
        """
        if threading.get_ident() in self._nonblocking_threads():
            self._put(data)
            return
        # Piece by piece, so one huge write waits for the client instead
        # of overflowing the buffer: first for room (where a slow client
        # keeps us, holding no turn), then the copy in one of the few output
        # turns (see ``_heavy.output_turn``).  After the wait the copy cannot
        # block: only the session's one command writes here this way, and
        # the server only drains.
        view = memoryview(data)
        for start in range(0, len(data), HIGH_WATER):
            with self._cond:
                if not self._wait_for_room():
                    return
            with output_turn():
                self._put(view[start : start + HIGH_WATER])

    def write_all_encoded(self, chunks: Sequence[bytes]) -> None:
        """Write a whole answer already encoded and shared (``Text``): one
        wait for room, then references to its chunks, never a copy.

        Fifty clients sharing one ``ps`` each wrote it from a worker thread
        a piece at a time (wait for room, take an output turn, copy): fifty
        threads woken again and again, passing the GIL among themselves while
        the app's loop waited for it.  Here each worker waits once, while the
        buffer is over ``HIGH_WATER`` (so a client that does not read holds
        at most one answer and a high-water mark, however many commands it
        sends), and the server's thread sends.  The chunks must not change.
        """
        if threading.get_ident() in self._nonblocking_threads():
            for chunk in chunks:
                self._put(chunk)
            return
        with self._cond:
            if not self._wait_for_room():
                return
            for chunk in chunks:
                self._append(chunk)
            wake = self._wake_due()
        if wake:
            self._wake()

    def write_nowait(self, s: str) -> int:
        self._put(encode_output(s))
        return len(s)

    def put_raw(self, data: bytes) -> None:
        """Protocol bytes (telnet replies): sent as they are, never blocking."""
        self._put(data)

    def pending(self) -> bool:
        """Whether anything is still waiting to be sent."""
        return self._size > 0

    def flush(self) -> None:
        """Nothing to do: the writer task sends as soon as data arrives."""

    def _put(self, data: bytes | memoryview) -> None:
        """Append without waiting (past ``HARD_LIMIT``: dropped, marked once).
        Keeps *data* itself, never a copy: it must not change afterwards."""
        with self._cond:
            if self._shut:
                return
            if self._size + len(data) > HARD_LIMIT:
                if not self._truncated:
                    self._truncated = True
                    self._append(b"\r\n[output truncated: the client is not reading]\r\n")
                return
            self._append(data)
            wake = self._wake_due()
        if wake:
            self._wake()

    def _wake_due(self) -> bool:
        """Whether the writer task must be woken for what was just appended
        (under ``_cond``): once until it drains, not once per piece."""
        wake = not self._wake_pending
        self._wake_pending = True
        return wake

    def _append(self, data: bytes | memoryview) -> None:
        self._pieces.append(data)
        self._size += len(data)

    def _drop_all(self) -> None:
        self._pieces.clear()
        self._size = 0

    def _wait_for_room(self) -> bool:
        deadline = time.monotonic() + self._stall_timeout
        while self._size > HIGH_WATER and not self._shut:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._shut = True
                self._drop_all()
                self._on_stall()
                return False
            self._cond.wait(remaining)
        return not self._shut

    def take(self, max_bytes: int = 256 * 1024) -> bytes | memoryview:
        """Remove and return up to *max_bytes* (server thread only).

        A big piece goes out as (a view of) itself; small ones (a prompt, a
        line) are joined, so one send carries many.
        """
        with self._cond:
            taken: list[bytes | memoryview] = []
            room = max_bytes
            while self._pieces and room > 0:
                piece = self._pieces.popleft()
                if len(piece) > room:  # its head now, the rest stays first in line
                    view = memoryview(piece)
                    self._pieces.appendleft(view[room:])
                    piece = view[:room]
                taken.append(piece)
                room -= len(piece)
            self._size -= max_bytes - room
            if not self._pieces:
                self._wake_pending = False
                self._truncated = False
            self._cond.notify_all()
        return taken[0] if len(taken) == 1 else b"".join(taken)

    def shut(self) -> None:
        """The client is gone: drop what is buffered, release blocked writers."""
        with self._cond:
            self._shut = True
            self._drop_all()
            self._cond.notify_all()


class SessionInput(io.TextIOBase):
    """``self._sin`` for commands that ask the user something.

    ``readline`` blocks the command's worker thread until the client sends a
    line; it returns ``""`` at end of input, like a file.
    """

    def __init__(self, read_line: Callable[[], str | None]) -> None:
        super().__init__()
        self._read_line = read_line

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]  # typeshed: TextIOBase is bytes-typed
        line = self._read_line()
        return "" if line is None else line + "\n"
