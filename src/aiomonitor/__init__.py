"""aiomonitor: a telnet monitor and Python console for running async apps.

Only re-exports live here.  ``import aiomonitor`` must stay cheap and must
not import trio: backends are imported when a monitor starts.
"""

from ._version import __version__
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
