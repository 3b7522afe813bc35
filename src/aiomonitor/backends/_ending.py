"""A proxy for a task's coroutine that ends the task cleanly (trio's ``cancel``, ``_trio_cancel``).

Framework-free, like the step-timing proxy, so that the code that walks
await chains (``_frames``, ``_chains``) can look through it without
importing trio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._proxy import CoroutineProxy


class EndingCoroutine(CoroutineProxy):
    """A task's coroutine, ending it with a plain return when what *is_the_end*
    recognises (the cancellation injected) reaches its top; *ended* hears how
    it ended, once."""

    __slots__ = ("_ended", "_is_the_end")

    def __init__(self, coro: Any, is_the_end: Callable[[BaseException], bool], ended: Callable[[str], None]) -> None:
        super().__init__(coro)
        self._is_the_end = is_the_end
        self._ended = ended

    def send(self, value: Any) -> Any:
        try:
            return self.coro.send(value)
        except BaseException as exc:  # noqa: BLE001 - every way out is reported, then passed on
            self._finish(exc)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        try:
            if val is None and tb is None:
                return self.coro.throw(typ)
            return self.coro.throw(typ, val, tb)
        except BaseException as exc:  # noqa: BLE001 - as send
            self._finish(exc)

    def _finish(self, exc: BaseException) -> Any:
        if isinstance(exc, StopIteration):
            # Returned after the cancellation reached it: a nursery of its own
            # absorbs the Cancelled that ended its body (trio drops it there).
            self._ended("cancelled")
            raise exc
        if self._is_the_end(exc):
            self._ended("cancelled")
            raise StopIteration(None) from None  # a plain return: the nursery and siblings see nothing
        self._ended(f"raised {exc!r}"[:200])
        raise exc

    # What readers of a coroutine look at (trio's tracebacks, our wrapper checks): the wrapped one's.
    @property
    def cr_code(self) -> Any:
        return self.coro.cr_code

    @property
    def cr_frame(self) -> Any:
        return self.coro.cr_frame

    @property
    def cr_await(self) -> Any:
        return self.coro.cr_await

    @property
    def cr_running(self) -> Any:
        return self.coro.cr_running
