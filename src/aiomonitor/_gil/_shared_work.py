"""Heavy computations, one at a time, shared by the clients that ask together.

Heavy work is serialised, so the app's loop never queues behind fifty
GIL-hungry threads; fifty clients typing ``ps`` at once would then wait for
fifty snapshots, the last answer fifty snapshots late.  Instead, requests
for the same computation (the same command, arguments and client settings:
the *key*) that arrive while an earlier one waits for its turn join it,
and all get the one result.  A request never takes a result that started
computing before it arrived, so every answer is as fresh as an answer of
its own would have been.

Results are shared between threads as they are: keep them immutable (the
text commands return lists of strings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from ._heavy import heavy_section
from ._relay import Relay

T = TypeVar("T")


class _Batch:
    """The requests for one key that will share one run."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        #: Set when the run ends; its waiters wake one after another (fifty
        #: woken at once wanted the GIL together: see ``_relay``).
        self.done = Relay()
        self.result: Any = None
        self.error: BaseException | None = None


def compute(work: SharedWork, func: Callable[..., T], *args: Any, share: Hashable | None = None) -> T:
    """``func(*args)`` in *work*'s turn and in a heavy section (the collector
    paused, the GIL handed over often: see ``_heavy``), shared with identical
    requests (same *share* key) waiting together.  What telnet commands and
    the web API compute goes through here."""

    def in_heavy_section() -> T:
        with heavy_section():
            return func(*args)

    return work.run(in_heavy_section, share)


class SharedWork:
    """Serialise heavy computations; coalesce identical ones waiting their turn."""

    def __init__(self) -> None:
        self._turn = threading.Lock()
        self._lock = threading.Lock()
        #: Batches not yet started, by key: the ones a new request may join.
        self._waiting: dict[Hashable, _Batch] = {}

    def run(self, func: Callable[[], T], key: Hashable | None = None) -> T:
        """``func()`` in its turn, or the result of an identical request's run
        that had not started when this one arrived.  Blocks the calling
        worker thread; *key* None never shares."""
        if key is None:
            with self._turn:
                return func()
        with self._lock:
            batch = self._waiting.get(key)
            leader = batch is None
            if batch is None:
                batch = self._waiting[key] = _Batch()
        if leader:
            self._lead(batch, key, func)
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        result: T = batch.result
        return result

    def _lead(self, batch: _Batch, key: Hashable, func: Callable[[], Any]) -> None:
        with self._turn:
            with self._lock:  # from now on, newcomers start a batch of their own
                del self._waiting[key]
            try:
                batch.result = func()
            except BaseException as exc:  # noqa: BLE001 - handed to every request of the batch
                batch.error = exc
            finally:
                batch.done.set()
