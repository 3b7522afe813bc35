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
from collections.abc import Callable, Sequence

from .._gil._heavy import output_turn
from .._protocol.telnet import encode_output

#: Above this many buffered bytes a writing command waits for the client.
HIGH_WATER = 1 << 20
#: Writers that must not wait (the app's loop, the server) cut the answer
#: they write once this many bytes are still unsent: one write of any size
#: is kept whole, so what a session holds is this limit plus one piece.
HARD_LIMIT = 8 << 20
#: How a cut answer ends, on a line of its own, before the next prompt; the
#: client (``aiomonitor -c``) looks for its first words.
TRUNCATED = "[output truncated: "
NOT_READING = TRUNCATED + "the client is not reading]"
NOT_KEEPING_UP = TRUNCATED + "the client is not keeping up with the app's loop]"


class SessionOutput(io.TextIOBase):
    """A thread-safe text sink, drained by the session's writer task.

    An *answer* runs from :meth:`begin_answer` (a command or statement
    starts) to :meth:`end_answer` (its prompt).  ``write`` from a worker
    thread waits while more than :data:`HIGH_WATER` bytes are unsent, so a
    client that reads gets every answer whole, whatever its size.  It never
    waits in a thread listed in ``nonblocking_threads`` (the server's own
    and the monitored loop's): there an answer is cut once
    :data:`HARD_LIMIT` bytes are unsent.  A client that takes no byte for a
    while is judged by the writer task (:meth:`cut`), never here.  A cut
    answer ends with a marker line, and its prompt always follows.
    """

    def __init__(self, wake: Callable[[], None], nonblocking_threads: Callable[[], set[int | None]]) -> None:
        super().__init__()
        self._wake = wake
        self._nonblocking_threads = nonblocking_threads
        self._cond = threading.Condition()
        # Pieces as written, not one bytearray: fifty clients sharing one
        # ``ps`` share its bytes instead of copying them in, out and to
        # bytes with the GIL held (see ``take``).
        self._pieces: collections.deque[bytes | memoryview] = collections.deque()
        self._size = 0
        self._wake_pending = False
        #: An answer is being written (between begin_answer and end_answer).
        self._answering = False
        #: The answer being written was cut: its writes are dropped until its prompt.
        self._cutting = False
        self._last_prompt = b""
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
        and share it between clients: encoding the same megabyte once per
        client kept the app's loop waiting for the GIL.
        """
        if threading.get_ident() in self._nonblocking_threads():
            self._put(data)
            return
        # Piece by piece, so one huge write waits for the client instead
        # of growing the buffer: first for room (where a slow client keeps
        # us, holding no turn), then the copy in one of the few output
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
        """Write a whole answer already encoded and shared (``Text``): a
        wait for room before each chunk, then a reference to it, never a copy.

        The wait is what makes a client that reads get all of it: each chunk
        goes in only once the client has taken all but ``HIGH_WATER`` of
        what came before, so what is buffered stays a high-water mark plus
        one chunk.  The chunks must not change.
        """
        if threading.get_ident() in self._nonblocking_threads():
            for chunk in chunks:
                self._put(chunk)
            return
        for chunk in chunks:
            with self._cond:
                if not self._wait_for_room():
                    return
                wake = self._append(chunk)
            if wake:
                self._wake()

    def write_nowait(self, s: str) -> int:
        self._put(encode_output(s))
        return len(s)

    def put_raw(self, data: bytes) -> None:
        """Protocol bytes (telnet replies): sent as they are, never blocking,
        even within a cut answer; dropped only past ``HARD_LIMIT``."""
        with self._cond:
            if self._shut or self._size > HARD_LIMIT:
                return
            wake = self._append(data)
        if wake:
            self._wake()

    def begin_answer(self) -> None:
        """A command or statement starts: what it writes is one answer."""
        with self._cond:
            self._answering = True

    def end_answer(self, prompt: str) -> None:
        """The answer is over: send *prompt*, whatever became of the answer."""
        data = encode_output(prompt)
        with self._cond:
            self._answering = self._cutting = False
            self._last_prompt = data
            if self._shut:
                return
            wake = self._append(data)
        if wake:
            self._wake()

    def cut(self) -> None:
        """The client took nothing for too long (the writer task judges):
        drop what is unsent and the rest of the answer, say so, and release
        waiting writers.  The prompt follows the marker: at once when no
        answer is being written, else when it ends."""
        with self._cond:
            self._cut_locked(NOT_READING)

    def pending(self) -> bool:
        """Whether anything is still waiting to be sent."""
        return self._size > 0

    def flush(self) -> None:
        """Nothing to do: the writer task sends as soon as data arrives."""

    def _put(self, data: bytes | memoryview) -> None:
        """Append without waiting; keeps *data* itself, never a copy, so it
        must not change afterwards.  Past ``HARD_LIMIT`` unsent, the answer is cut."""
        with self._cond:
            if self._shut or self._cutting:
                return
            if self._size > HARD_LIMIT:
                self._cut_locked(NOT_KEEPING_UP)
                return
            wake = self._append(data)
        if wake:
            self._wake()

    def _cut_locked(self, marker: str) -> None:
        if self._shut:
            return
        self._drop_all()
        wake = self._append(encode_output(f"\n{marker}\n"))
        if self._answering:
            self._cutting = True
        elif self._last_prompt:
            self._append(self._last_prompt)
        self._cond.notify_all()
        if wake:
            self._wake()

    def _wake_due(self) -> bool:
        """Whether the writer task must be woken for what was just appended
        (under ``_cond``): once until it drains, not once per piece."""
        wake = not self._wake_pending
        self._wake_pending = True
        return wake

    def _append(self, data: bytes | memoryview) -> bool:
        """Buffer *data* (under ``_cond``); whether the writer task must be woken for it."""
        self._pieces.append(data)
        self._size += len(data)
        return self._wake_due()

    def _drop_all(self) -> None:
        self._pieces.clear()
        self._size = 0

    def _wait_for_room(self) -> bool:
        """Wait (under ``_cond``) until the client has taken all but
        ``HIGH_WATER``; False when the answer was cut or the client left.

        No deadline here: the writer task sends whenever anything is
        buffered, and cuts the answer (which wakes us) once the client takes
        nothing for ``write_timeout``.
        """
        while self._size > HIGH_WATER and not (self._shut or self._cutting):
            self._cond.wait()
        return not (self._shut or self._cutting)

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
            if self._size <= HIGH_WATER:  # what waiting writers wait for (cut and shut notify themselves)
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
