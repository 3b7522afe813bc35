"""Helpers for writing custom monitor commands (documented import path)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def alt_names(names: str) -> Callable[[F], F]:
    """Give a ``do_<COMMAND>`` method aliases: ``@alt_names("? h")``.

    *names* is one string of space-separated aliases, as in the classic API.
    """
    aliases = tuple(names.split())

    def decorator(func: F) -> F:
        func.alt_names = aliases  # type: ignore[attr-defined]
        return func

    return decorator


def readonly(func: F) -> F:
    """Mark a ``do_<COMMAND>`` method as changing nothing, so that it runs in a
    read-only monitor (``Monitor(readonly=True)``) too.

    Nothing else can tell what a custom command changes: an unmarked one is
    refused there, with one line saying so.
    """
    func.readonly = True  # type: ignore[attr-defined]
    return func


def all_tasks(loop: asyncio.AbstractEventLoop | None = None) -> set[asyncio.Task[Any]]:
    """The tasks of *loop* that are not done, as 0.4's ``utils.all_tasks``.

    ``asyncio.all_tasks`` itself, kept under this name for code written
    against 0.4; safe to call from another thread than the loop's.
    """
    return asyncio.all_tasks(loop)
