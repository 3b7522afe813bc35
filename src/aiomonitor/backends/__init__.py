"""The interface between the monitor and one async framework, and its factory.

Only re-exports and the factory live here: the interface is in ``_base``, the
records it returns in ``_records``, each backend in a module of its own;
``__all__`` names the framework interface and its records, nothing else.
Nothing in ``backends/`` imports the rest of the package but the GIL
etiquette (``aiomonitor._gil``), which imports nothing of ours: the monitor
depends on backends, never the other way round.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ._base import (
    DEFAULT_HOP_TIMEOUT,
    MONITOR_TASK_NAME,
    Backend,
    Interrupted,
    LoopUnresponsive,
    NotCancellable,
    Submission,
    UnknownTask,
)
from ._columns import TaskColumns, columns_of, snapshots_of
from ._frames import is_library
from ._records import (
    Canceller,
    CancelOutcome,
    Census,
    EndedTask,
    FrameInfo,
    Holder,
    TaskRecord,
    TaskSnapshot,
    TracingMemory,
    Wait,
)

if TYPE_CHECKING:
    import asyncio

__all__ = (
    "DEFAULT_HOP_TIMEOUT",
    "MONITOR_TASK_NAME",
    "Backend",
    "CancelOutcome",
    "Canceller",
    "Census",
    "EndedTask",
    "FrameInfo",
    "Holder",
    "Interrupted",
    "LoopUnresponsive",
    "NotCancellable",
    "Submission",
    "TaskColumns",
    "TaskRecord",
    "TaskSnapshot",
    "TracingMemory",
    "UnknownTask",
    "Wait",
    "asyncio_backend",
    "columns_of",
    "is_library",
    "snapshots_of",
    "trio_backend",
)


def asyncio_backend(
    loop: asyncio.AbstractEventLoop | None, *, trace: bool = False, history_size: int = 0, timing: bool = False
) -> Backend:
    """A backend for an asyncio (or uvloop) loop; None: the running loop, else
    the policy's (the classic API's "current loop")."""
    import asyncio

    from .asyncio import AsyncioBackend

    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                loop = asyncio.get_event_loop_policy().get_event_loop()
    return AsyncioBackend(loop, trace=trace, history_size=history_size, timing=timing)


def trio_backend(
    *, cancellable_tasks: bool = False, trace: bool = False, history_size: int = 0, timing: bool = False
) -> Backend:
    """A backend for the trio run this is called from.

    Imported only here: ``import aiomonitor`` must not import trio, and a
    missing trio is an ImportError naming the extra to install.
    """
    try:
        from .trio import TrioBackend
    except ImportError as exc:
        raise ImportError("monitoring trio needs trio: pip install 'aiomonitor[trio]'") from exc
    return TrioBackend(cancellable_tasks=cancellable_tasks, trace=trace, history_size=history_size, timing=timing)
