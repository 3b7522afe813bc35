"""OpenTelemetry: the series of ``/metrics`` through the SDK, in-process and under ``run --otel``."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from aiomonitor import otel
from aiomonitor._query._series import SHARED

from ..conftest import open_monitor
from ..support.apps import ROOT

PROGRAMS = Path(__file__).parent.parent / "support" / "programs"


def points(reader: InMemoryMetricReader) -> dict[str, tuple[str, list[Any]]]:
    """Metric name -> (unit, its data points), from one collection."""
    data = reader.get_metrics_data()
    found: dict[str, tuple[str, list[Any]]] = {}
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = (metric.unit or "", list(metric.data.data_points))
    return found


def value(found: dict[str, tuple[str, list[Any]]], name: str, **attributes: str) -> float:
    wanted = attributes.items()
    return float(sum(point.value for point in found[name][1] if all(point.attributes.get(k) == v for k, v in wanted)))


@pytest.fixture
def sdk() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "test"}))
    yield reader, provider
    provider.shutdown()


async def test_every_series_reaches_the_sdk_with_its_unit_and_values_that_move(
    anyio_backend_name: str, sdk: tuple[InMemoryMetricReader, MeterProvider]
) -> None:
    reader, provider = sdk
    options = {"trace_tasks": True, "max_termination_history": 100, "stall_threshold": 0.05}
    with open_monitor(anyio_backend_name, **options) as monitor:
        instruments = otel.instrument(monitor, meter_provider=provider)
        before = points(reader)
        created_before = value(before, "aiomonitor.tasks.created")
        stalls_before = value(before, "aiomonitor.loop.stalls")

        async def parked() -> None:
            await anyio.sleep(3600)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(parked)
            await anyio.sleep(0.1)  # let the recorder see a healthy beat first
            time.sleep(0.3)  # blocks the loop: one stall
            with anyio.fail_after(15):  # the loop runs meanwhile: the late beat is how the stall is seen
                while value(points(reader), "aiomonitor.loop.stalls") <= stalls_before:
                    await anyio.sleep(0.05)
                while not points(reader).get("aiomonitor.loop.lag", ("", []))[1]:
                    await anyio.sleep(0.05)  # a second's lag peak, from the recorder's thread
            after = points(reader)
            group.cancel_scope.cancel()
        with anyio.fail_after(15):
            while value(points(reader), "aiomonitor.tasks.ended") < 20:
                gc.collect()  # asyncio counts a task ended when it is released
                await anyio.sleep(0.05)

        for series in SHARED:
            assert series.otel in after, f"{series.otel} missing: {sorted(after)}"
            assert after[series.otel][0] == series.unit
        assert value(after, "aiomonitor.tasks.created") >= created_before + 20
        states = {point.attributes["state"] for point in after["aiomonitor.tasks"][1]}
        assert states, "live tasks by state"
        assert value(after, "aiomonitor.tasks") >= 20
        lag = after["aiomonitor.loop.lag"][1][0]
        assert lag.count >= 1 and lag.max >= 0.0
        assert list(lag.explicit_bounds)[:2] == [0.001, 0.005], "buckets for a loop's lag, not the SDK's defaults"
        instruments.close()
    assert monitor.closed
    assert "aiomonitor.tasks" not in points(reader) or not points(reader)["aiomonitor.tasks"][1], "closed: no reports"


def test_instrument_without_the_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import aiomonitor.otel as otel\n"
        "try:\n"
        "    otel.instrument(None)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'aiomonitor[otel]'" in result.stdout, result.stdout + result.stderr


def test_importing_aiomonitor_otel_imports_nothing_of_opentelemetry() -> None:
    code = "import sys, aiomonitor.otel; print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_run_otel_reports_through_the_exporter_the_environment_names(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIOMONITOR_RUNTIME_DIR": str(tmp_path / "registry"),
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "aiomonitor", "run", "--otel", "--", str(PROGRAMS / "plain_asyncio.py"), "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    lines: list[str] = []
    try:
        while "aiomonitor.loop.stalls" not in "".join(lines):  # bounded by faulthandler_timeout
            line = process.stdout.readline()
            assert line, "the program ended before a collection was exported"
            lines.append(line)
        output, errors = process.communicate("bye\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    exported = "".join(lines) + output
    assert process.returncode == 0, errors
    assert '"aiomonitor.tasks"' in exported and '"process.pid"' in exported
    assert f'"process.pid": {process.pid}' in exported
    assert '"service.name": "plain_asyncio.py"' in exported


def test_run_otel_names_the_missing_exporter_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    result = subprocess.run(
        [sys.executable, "-m", "aiomonitor", "run", "--otel", "--", str(PROGRAMS / "plain_asyncio.py"), "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "opentelemetry-exporter-otlp-proto-grpc" in result.stderr.splitlines()[-1]
    assert json.dumps("argv") not in result.stdout, "the program never ran"


def test_the_metrics_page_lists_each_series_as_the_code_reports_it() -> None:
    """The series are documented once, for both engines: the page's table is the code's."""
    page = (ROOT / "docs" / "metrics.md").read_text()
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in page.splitlines()
        if line.startswith("| `aiomonitor.")
    ]
    documented = [(row[0], row[1], row[2], row[3], tuple(a for a in row[4].split(", ") if a)) for row in rows]
    assert documented == [(s.otel, s.prometheus, s.kind, s.unit, s.attributes) for s in SHARED]
