"""The time series a monitor reports, named once for both engines that read them.

``/metrics`` (Prometheus, ``_web/_metrics``) and OpenTelemetry
(``aiomonitor.otel``) report the same facts under each engine's naming
rules: ``aiomonitor_loop_stalls_total`` there is ``aiomonitor.loop.stalls``
here.  This table is the one place that says which fact is which, of what
kind and in what unit; the documentation's table is checked against it
(``docs/metrics.md``).

The readings come from a :class:`SeriesSource` when an engine asks (a
scrape, a collection): nothing is kept up to date for an engine that never
asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..backends import Backend
from ._cost import MonitorBill
from ._stalls import StallRecorder

Kind = Literal["gauge", "updowncounter", "counter", "histogram"]


@dataclass(frozen=True)
class Series:
    """One reported fact."""

    #: Its name in OpenTelemetry, and the metric family's in Prometheus (which
    #: adds ``_total`` to counters and ``_bucket``/``_sum``/``_count`` to histograms).
    otel: str
    prometheus: str
    #: The instrument's kind in OpenTelemetry (Prometheus reads an up-down counter as a gauge).
    kind: Kind
    #: UCUM, as OpenTelemetry wants it (``s``, ``{task}``).
    unit: str
    description: str
    #: The attributes (labels) each point carries.
    attributes: tuple[str, ...] = ()
    #: When the series is reported at all.
    when: str = "always"


TASKS = Series("aiomonitor.tasks", "aiomonitor_tasks", "updowncounter", "{task}", "Live tasks by state.", ("state",))
TASKS_CREATED = Series(
    "aiomonitor.tasks.created",
    "aiomonitor_tasks_created",
    "counter",
    "{task}",
    "Tasks created since tracing began.",
    when="trace_tasks",
)
TASKS_ENDED = Series(
    "aiomonitor.tasks.ended",
    "aiomonitor_tasks_ended",
    "counter",
    "{task}",
    "Tasks seen ending since tracing began (asyncio: when released).",
    when="trace_tasks (on asyncio, with max_termination_history)",
)
LOOP_LAG = Series(
    "aiomonitor.loop.lag",
    "aiomonitor_loop_lag_peak_seconds",
    "histogram",
    "s",
    "The worst lateness of the loop's heartbeat in each second.",
    when="stall_threshold",
)
LOOP_STALLS = Series(
    "aiomonitor.loop.stalls",
    "aiomonitor_loop_stalls",
    "counter",
    "{stall}",
    "Times the loop was stuck for the stall threshold or more.",
    when="stall_threshold",
)
LOOP_BLOCKED = Series(
    "aiomonitor.loop.blocked",
    "aiomonitor_loop_blocked_seconds",
    "gauge",
    "s",
    "How long the loop has been stuck right now (0 while it runs its callbacks on time).",
    when="stall_threshold",
)

MONITOR_CPU = Series(
    "aiomonitor.monitor.cpu",
    "aiomonitor_monitor_cpu_seconds",
    "counter",
    "s",
    "CPU time the monitor's own threads have used (Linux).",
    when="on Linux",
)
MONITOR_STALL = Series(
    "aiomonitor.monitor.command_stall",
    "aiomonitor_monitor_command_stall_seconds",
    "gauge",
    "s",
    "The worst loop stall a monitor command caused in the last hour (a bound from above).",
    when="stall_threshold",
)
TRACING = Series(
    "aiomonitor.tracing",
    "aiomonitor_tracing",
    "gauge",
    "1",
    "1 while the tasks created now are traced (trace on), else 0.",
)

#: Reported to both engines, in this order.
SHARED = (TASKS, TASKS_CREATED, TASKS_ENDED, LOOP_LAG, LOOP_STALLS, LOOP_BLOCKED, MONITOR_CPU, MONITOR_STALL, TRACING)

#: Upper bounds of the loop lag histogram's buckets, in seconds (both engines).
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class SeriesSource:
    """What one monitor's series are read from."""

    backend: Backend
    recorder: StallRecorder
    #: Whether the stall recorder runs (lag and stalls are only known then).
    records_stalls: bool
    #: How many telnet sessions and web connections are open now.
    sessions: Callable[[], int]
    #: What the monitor itself spends (CPU, the stalls its commands caused).
    bill: MonitorBill | None = None
