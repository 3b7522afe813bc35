"""``/metrics``: the monitor's facts in the Prometheus text format.

A collector of our own in a ``CollectorRegistry`` of our own, one per
monitor: never prometheus_client's process-global registry, which the app
may use for its own metrics (two monitors, or the app's own exporter, must
not collide on names).  Values are read when scraped, not kept up to date:
an unscraped monitor pays nothing.

Cost at scrape time is one :meth:`Backend.census` (counts by state and
coroutine, no snapshot) plus reads of the stall recorder; the coroutine
label is bounded to the ``TOP_COROUTINES`` most common plus ``other``, so a
scrape of 100k tasks of 100k different coroutines stays a small document.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .._gil._heavy import heavy_section
from .._query import _queries as _query
from .._query._series import (
    LAG_BUCKETS,
    LOOP_BLOCKED,
    LOOP_LAG,
    LOOP_STALLS,
    MONITOR_CPU,
    MONITOR_STALL,
    TASKS,
    TASKS_CREATED,
    TASKS_ENDED,
    TRACING,
    SeriesSource,
)
from .._version import __version__

#: Coroutine names given their own label value; the rest are "other".
TOP_COROUTINES = 20

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The label value of the coroutines past the top ones.
OTHER = "other"


class MonitorCollector:
    """A prometheus_client custom collector: ``collect`` reads the monitor at each scrape."""

    def __init__(self, source: SeriesSource) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        # Nothing to describe up front: registering must not scrape the tasks.
        return []

    def collect(self) -> Iterator[Metric]:
        source = self._source
        backend = source.backend
        info = InfoMetricFamily("aiomonitor", "The monitor: its version, the framework it watches, the process.")
        info.add_metric([], {"version": __version__, "framework": backend.framework, "pid": str(os.getpid())})
        yield info
        with heavy_section():
            census = _query.census(backend)
        by_state = GaugeMetricFamily(TASKS.prometheus, TASKS.description, labels=list(TASKS.attributes))
        for state, count in sorted(census.by_state.items()):
            by_state.add_metric([state], count)
        yield by_state
        by_coro = GaugeMetricFamily(
            "aiomonitor_tasks_by_coroutine",
            f"Live tasks by coroutine: the {TOP_COROUTINES} most common, the rest as 'other'.",
            labels=["coroutine"],
        )
        for name, count in top_with_other(census.by_coro, TOP_COROUTINES):
            by_coro.add_metric([name], count)
        yield by_coro
        totals = _query.trace_totals(backend)
        if totals is not None:
            created, ended = totals
            created_total = CounterMetricFamily(TASKS_CREATED.prometheus, TASKS_CREATED.description)
            created_total.add_metric([], created)
            yield created_total
            if ended is not None:
                ended_total = CounterMetricFamily(TASKS_ENDED.prometheus, TASKS_ENDED.description)
                ended_total.add_metric([], ended)
                yield ended_total
        sessions = GaugeMetricFamily("aiomonitor_sessions", "Telnet sessions and web connections open now.")
        sessions.add_metric([], source.sessions())
        yield sessions
        tracing = GaugeMetricFamily(TRACING.prometheus, TRACING.description)
        tracing.add_metric([], 1.0 if backend.tracing else 0.0)
        yield tracing
        bill = source.bill
        if bill is not None:
            cpu = bill.cpu()
            if cpu is not None and bill.total_cpu is not None:
                spent = CounterMetricFamily(MONITOR_CPU.prometheus, MONITOR_CPU.description)
                spent.add_metric([], bill.total_cpu)
                yield spent
            if source.records_stalls:
                worst = bill.worst_stall()
                stall = GaugeMetricFamily(MONITOR_STALL.prometheus, MONITOR_STALL.description)
                stall.add_metric([], worst.seconds if worst is not None else 0.0)
                yield stall
        if source.records_stalls:
            yield from self._loop_health()

    def _loop_health(self) -> Iterator[Metric]:
        recorder = self._source.recorder
        stalls = CounterMetricFamily(
            LOOP_STALLS.prometheus, f"{LOOP_STALLS.description} (the threshold: {recorder.threshold:g} s)"
        )
        stalls.add_metric([], recorder.count)
        yield stalls
        age = recorder.heartbeat_age()
        if age is not None:
            overdue = GaugeMetricFamily(LOOP_BLOCKED.prometheus, LOOP_BLOCKED.description)
            overdue.add_metric([], age)
            yield overdue
        peaks = [peak for _, peak in recorder.lag_history()]
        histogram = HistogramMetricFamily(LOOP_LAG.prometheus, f"{LOOP_LAG.description} (the last five minutes)")
        histogram.add_metric([], lag_buckets(peaks), sum_value=sum(peaks))
        yield histogram


def top_with_other(counts: dict[str, int], top: int) -> list[tuple[str, int]]:
    """The *top* largest counts by name (ties by name), then the rest summed as ``other``.

    A coroutine that is itself named ``other`` joins the rest: two samples
    with one label set would make Prometheus reject the whole scrape.
    """
    ranked = sorted(((n, c) for n, c in counts.items() if n != OTHER), key=lambda item: (-item[1], item[0]))
    shown = ranked[:top]
    rest = sum(count for _, count in ranked[top:]) + counts.get(OTHER, 0)
    if rest:
        shown.append((OTHER, rest))
    return shown


def lag_buckets(peaks: list[float]) -> list[tuple[str, float]]:
    """Cumulative histogram buckets of *peaks*, ``+Inf`` last."""
    buckets = [(f"{bound:g}", float(sum(1 for peak in peaks if peak <= bound))) for bound in LAG_BUCKETS]
    buckets.append(("+Inf", float(len(peaks))))
    return buckets


class Metrics:
    """One monitor's registry; ``render()`` is a scrape (call it from a worker thread)."""

    def __init__(self, source: SeriesSource) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(MonitorCollector(source))

    def render(self) -> bytes:
        return generate_latest(self._registry)
