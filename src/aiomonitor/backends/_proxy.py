"""What our coroutine proxies share (step timing's, trio cancel's): they hold
the task's coroutine as ``coro``, which the chain walkers look through, and
behave as a coroutine to whoever drives them (``send``/``throw`` are theirs)."""

from __future__ import annotations

import collections.abc
from typing import Any


class CoroutineProxy(collections.abc.Coroutine):  # type: ignore[type-arg]
    """A coroutine standing in for ``coro``; subclasses define ``send`` and ``throw``."""

    __slots__ = ("coro",)

    def __init__(self, coro: Any) -> None:
        self.coro = coro

    def send(self, value: Any) -> Any:
        raise NotImplementedError

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def __iter__(self) -> Any:
        return self
