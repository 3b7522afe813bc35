"""Report a monitor's series to OpenTelemetry: ``aiomonitor.otel.instrument(monitor)``.

Needs ``aiomonitor[otel]``.  Importing this module imports nothing of
OpenTelemetry; :func:`instrument` does, and says which extra to install when
it is missing.

The series are those of ``/metrics`` (``_query/_series``; ``docs/metrics.md``
lists both names of each): task counts by state, tasks created and ended
(with ``trace_tasks``), the loop's lag, its stalls and how long it is stuck
right now (while the stall recorder runs, the default).  Counts and stalls
are observed when the SDK collects, so an idle exporter costs nothing; a
collection costs what a ``/metrics`` scrape does (one census of the tasks,
no snapshot).  The lag histogram gets one point a second from the stall
recorder's thread.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._gil._heavy import heavy_section
from ._query import _queries as _query
from ._query._series import (
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
)
from ._registry import current_service
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from .monitor import Monitor

__all__ = ("Instrumentation", "instrument")

log = logging.getLogger("aiomonitor")

EXTRA = "pip install 'aiomonitor[otel]'"
#: The OTLP metric exporters by ``OTEL_EXPORTER_OTLP_PROTOCOL``, and the package that has each.
_OTLP_EXPORTERS = {
    "http/protobuf": (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry-exporter-otlp-proto-http",
    ),
    "grpc": ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "opentelemetry-exporter-otlp-proto-grpc"),
}


class Instrumentation:
    """The instruments of one monitor; :meth:`close` stops their reports (idempotent).

    Closing the monitor stops them too: its observations end with it.
    """

    def __init__(self, monitor: Monitor, provider: MeterProvider) -> None:
        from opentelemetry.metrics import Observation

        self._monitor = monitor
        self._closed = False
        source = monitor._series_source()
        meter = provider.get_meter("aiomonitor", __version__)

        def tasks(_: CallbackOptions) -> Iterable[Observation]:
            if not self._live():
                return []
            with heavy_section():
                census = _query.census(source.backend)
            return [Observation(count, {"state": state}) for state, count in sorted(census.by_state.items())]

        def totals(index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                counts = _query.trace_totals(source.backend) if self._live() else None
                value = None if counts is None else counts[index]
                return [] if value is None else [Observation(value)]

            return observe

        def stalls(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(source.recorder.count)] if self._live() and source.records_stalls else []

        def monitor_cpu(_: CallbackOptions) -> Iterable[Observation]:
            bill = source.bill
            if not self._live() or bill is None:
                return []
            bill.sample_cpu()
            return [] if bill.total_cpu is None else [Observation(bill.total_cpu)]

        def command_stall(_: CallbackOptions) -> Iterable[Observation]:
            if not self._live() or source.bill is None or not source.records_stalls:
                return []
            worst = source.bill.worst_stall()
            return [Observation(worst.seconds if worst is not None else 0.0)]

        def tracing(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(1 if source.backend.tracing else 0)] if self._live() else []

        def blocked(_: CallbackOptions) -> Iterable[Observation]:
            age = source.recorder.heartbeat_age() if self._live() and source.records_stalls else None
            return [] if age is None else [Observation(age)]

        meter.create_observable_up_down_counter(
            TASKS.otel, callbacks=[tasks], unit=TASKS.unit, description=TASKS.description
        )
        for index, series in enumerate((TASKS_CREATED, TASKS_ENDED)):
            meter.create_observable_counter(
                series.otel, callbacks=[totals(index)], unit=series.unit, description=series.description
            )
        meter.create_observable_counter(
            LOOP_STALLS.otel, callbacks=[stalls], unit=LOOP_STALLS.unit, description=LOOP_STALLS.description
        )
        meter.create_observable_gauge(
            LOOP_BLOCKED.otel, callbacks=[blocked], unit=LOOP_BLOCKED.unit, description=LOOP_BLOCKED.description
        )
        meter.create_observable_counter(
            MONITOR_CPU.otel, callbacks=[monitor_cpu], unit=MONITOR_CPU.unit, description=MONITOR_CPU.description
        )
        for series, callback in ((MONITOR_STALL, command_stall), (TRACING, tracing)):
            meter.create_observable_gauge(
                series.otel, callbacks=[callback], unit=series.unit, description=series.description
            )
        lag = _lag_histogram(meter)
        self._stop_lag = source.recorder.on_lag_second(lag.record) if source.records_stalls else None

    def _live(self) -> bool:
        return not self._closed and not self._monitor.closed

    def close(self) -> None:
        self._closed = True
        if self._stop_lag is not None:
            self._stop_lag()
            self._stop_lag = None


def _lag_histogram(meter: Any) -> Any:
    options = {"unit": LOOP_LAG.unit, "description": LOOP_LAG.description}
    try:  # buckets for a loop's lag, not the SDK's defaults (which start at 5 s for seconds)
        return meter.create_histogram(LOOP_LAG.otel, explicit_bucket_boundaries_advisory=list(LAG_BUCKETS), **options)
    except TypeError:  # an API before 1.23 takes no advice
        return meter.create_histogram(LOOP_LAG.otel, **options)


def instrument(monitor: Monitor, *, meter_provider: MeterProvider | None = None) -> Instrumentation:
    """Report *monitor*'s series through *meter_provider* (the global one when None).

    The provider's resource is the process's identity (``process.pid``,
    ``service.name``); ``aiomonitor run --otel`` makes one with both.
    ``ImportError`` naming the extra when OpenTelemetry is not installed.
    """
    problem = require_otel(sdk=False)
    if problem is not None:
        raise ImportError(problem)
    if meter_provider is None:
        from opentelemetry.metrics import get_meter_provider

        meter_provider = get_meter_provider()
    return Instrumentation(monitor, meter_provider)


def require_otel(*, sdk: bool) -> str | None:
    """None when OpenTelemetry's API (and with *sdk*, the SDK and the exporters
    ``OTEL_METRICS_EXPORTER`` names) can be imported; else a one-line reason."""
    needed = ["opentelemetry.metrics"] + (["opentelemetry.sdk.metrics"] if sdk else [])
    for module in needed:
        if not _importable(module):
            return f"OpenTelemetry is not installed ({module} is missing): {EXTRA}"
    if sdk:
        try:
            _exporter_modules()
        except ValueError as exc:
            return str(exc)
    return None


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # the parent package is missing
        return False


def _exporter_modules() -> list[str]:
    """The modules of the exporters ``$OTEL_METRICS_EXPORTER`` asks for (``ValueError`` if one can't be had)."""
    names = [name.strip() for name in os.environ.get("OTEL_METRICS_EXPORTER", "otlp").split(",") if name.strip()]
    modules = []
    for name in names:
        if name == "none":
            continue
        if name == "console":
            modules.append("opentelemetry.sdk.metrics.export")
        elif name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            )
            if protocol not in _OTLP_EXPORTERS:
                raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc")
            module, package = _OTLP_EXPORTERS[protocol]
            if not _importable(module):
                raise ValueError(f"OTEL_METRICS_EXPORTER=otlp ({protocol}) needs {package}: pip install {package}")
            modules.append(module)
        else:
            raise ValueError(f"OTEL_METRICS_EXPORTER={name!r}: aiomonitor run --otel knows otlp, console and none")
    return modules


def meter_provider_from_environment() -> MeterProvider:
    """An SDK meter provider as OpenTelemetry's ``OTEL_*`` variables configure it.

    Exporters from ``OTEL_METRICS_EXPORTER`` (``otlp`` by default; also
    ``console`` and ``none``), each with a periodic reader
    (``OTEL_METRIC_EXPORT_INTERVAL``); the resource from
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, plus
    ``process.pid`` and, unless those name one, the service ``run`` started
    as ``service.name``.
    """
    import importlib

    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    readers = []
    for module in _exporter_modules():
        if module == "opentelemetry.sdk.metrics.export":
            exporter: Any = ConsoleMetricExporter()
        else:
            exporter = importlib.import_module(module).OTLPMetricExporter()
        readers.append(PeriodicExportingMetricReader(exporter))
    attributes: dict[str, Any] = {"process.pid": os.getpid()}
    service = current_service()
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if service is not None and not named:
        attributes["service.name"] = service.name
    return SdkMeterProvider(metric_readers=readers, resource=Resource.create(attributes))


class EnvironmentInstrumenter:
    """``run --otel``: one meter provider per process (made at the first
    monitor), every monitor of the process reported through it."""

    def __init__(self) -> None:
        self._provider: MeterProvider | None = None

    def __call__(self, monitor: Monitor) -> None:
        try:
            if self._provider is None:
                self._provider = meter_provider_from_environment()
            instrument(monitor, meter_provider=self._provider)
        except Exception:  # the app runs on, unreported, and the log says why
            log.exception("aiomonitor: could not report to OpenTelemetry")
