"""aiomonitor: a telnet monitor and Python console for running async apps.

Only re-exports live here, and they are resolved on first use: ``import
aiomonitor`` costs about a millisecond and imports neither the monitor's
machinery nor trio.  That matters beyond taste: every process of a service
run under ``aiomonitor run`` imports this package at start-up (see
``_follow``), including the many that never run an event loop.
"""

from __future__ import annotations

import importlib

from ._version import __version__

#: ``typing`` alone would take ten times the rest of this import; type
#: checkers treat this name as true wherever it comes from.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .monitor import CONSOLE_PORT, MONITOR_HOST, MONITOR_PORT, Monitor, monitor_trio, start_monitor

__all__ = (
    "CONSOLE_PORT",
    "MONITOR_HOST",
    "MONITOR_PORT",
    "Monitor",
    "__version__",
    "monitor_trio",
    "start_monitor",
)

#: The names above that come from ``aiomonitor.monitor``.
_FROM_MONITOR = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _FROM_MONITOR:
        from . import monitor

        value = getattr(monitor, name)
        globals()[name] = value  # resolved once; later reads are plain lookups
        return value
    if not name.startswith("__"):
        # ``aiomonitor.utils`` and friends without importing them first, as
        # when this package imported them itself.
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
