"""The ``metrics`` option: in every combination one scrape carries each family once and passes promtool.

Set-ups an app can have: no MeterProvider; a MeterProvider exporting elsewhere (OTLP-like: an
in-memory reader); a MeterProvider exporting through OpenTelemetry's Prometheus exporter into the
same registry cioguard uses. Each is crossed with every ``metrics`` value, traffic goes through the
real SDK to the emulator (including a 429 and a retry), and the registry's exposition is checked by
the real ``promtool check metrics``. The ``opentelemetry-instrument`` + ``OTEL_METRICS_EXPORTER=prometheus``
case runs as a user runs it, in a subprocess scraping its own ``/metrics`` port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from customerio import CustomerIO
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

import cioguard
from cioguard.testing import FakeCustomerIO

SETUPS = ("no_provider", "otlp_like", "otel_prometheus_exporter")
METRICS = (None, "prometheus", "otel", "both", "none")


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False) as emulator:
        yield emulator


def families(text: str) -> Counter[str]:
    """How many times each metric family is declared (``# TYPE`` lines) in an exposition."""
    return Counter(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


def check_scrape(text: str, promtool: str) -> Counter[str]:
    declared = families(text)
    doubled = sorted(name for name, count in declared.items() if count > 1)
    assert not doubled, f"families declared twice: {doubled}"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return declared


def provider_for(setup: str, registry: CollectorRegistry) -> MeterProvider | None:
    if setup == "no_provider":
        return None
    if setup == "otlp_like":
        return MeterProvider(metric_readers=[InMemoryMetricReader()])
    return MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])


def traffic(fake: FakeCustomerIO) -> None:
    cio = CustomerIO(fake.site_id, fake.api_key)
    fake.fail_next(1, status=429, retry_after=0)
    cio.identify("u1", email="u1@example.com")
    cio.track("u1", "order_placed", data={"total": 3})
    assert cioguard.flush(timeout=10)


@pytest.mark.parametrize("metrics", METRICS)
@pytest.mark.parametrize("setup", SETUPS)
def test_every_combination_scrapes_each_family_once(
    setup: str, metrics: str | None, fake: FakeCustomerIO, promtool: str
) -> None:
    registry = CollectorRegistry()
    provider = provider_for(setup, registry)
    options: dict[str, Any] = {"metrics": metrics} if metrics is not None else {}
    cioguard.instrument(
        track_url=fake.track_url,
        registry=registry,
        meter_provider=provider,
        pitfalls="off",
        flush_interval=0.05,
        **options,
    )
    try:
        traffic(fake)
        declared = check_scrape(generate_latest(registry).decode(), promtool)
    finally:
        cioguard.uninstrument(timeout=5)
        if provider is not None:
            provider.shutdown()
    through_exporter = setup == "otel_prometheus_exporter"
    expect_calls = metrics != "none" and (metrics != "otel" or through_exporter)
    assert ("customerio_calls_total" in declared) == expect_calls, sorted(declared)
    if expect_calls:
        for family in (
            "customerio_requests_total",
            "customerio_request_duration_seconds",
            "customerio_events_delivered_total",
            "customerio_rate_limited_total",
        ):
            assert family in declared, (family, sorted(declared))


def test_both_with_the_otel_prometheus_exporter_keeps_only_the_otel_copy(
    fake: FakeCustomerIO, promtool: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Explicit ``metrics="both"`` on a registry the OTel exporter also writes to: one copy, logged."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    cioguard.instrument(
        track_url=fake.track_url, registry=registry, meter_provider=provider, metrics="both", pitfalls="off"
    )
    try:
        traffic(fake)
        text = generate_latest(registry).decode()
    finally:
        cioguard.uninstrument(timeout=5)
        provider.shutdown()
    check_scrape(text, promtool)
    assert "otel_scope_name" in text  # the families come from the OTel exporter
    assert "http_client_request_duration_seconds_bucket" in text  # and the semconv histogram with them
    assert any("metrics='both'" in record.getMessage() for record in caplog.records)


APP = """
import urllib.request
from customerio import CustomerIO
import cioguard

cio = CustomerIO({site!r}, {key!r}, host="127.0.0.1", port={port})
cio.identify("u1", email="u1@example.com")
cio.track("u1", "scraped", data={{}})
assert cioguard.flush(timeout=10)
scrape = urllib.request.urlopen("http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
print("SCRAPE-BEGIN", scrape, "SCRAPE-END", sep="\\n")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("metrics", [None, "both", "otel"])
def test_opentelemetry_instrument_with_the_prometheus_exporter(
    metrics: str | None, fake: FakeCustomerIO, promtool: str, tmp_path: Path
) -> None:
    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(APP.format(site=fake.site_id, key=fake.api_key, port=fake.port, metrics_port=port))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CIOGUARD_"))}
    env.update(
        CIOGUARD_TRACK_URL=fake.track_url,
        CIOGUARD_PITFALLS="off",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
    )
    if metrics is not None:
        env["CIOGUARD_METRICS"] = metrics
    command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(app)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    text = completed.stdout.split("SCRAPE-BEGIN\n", 1)[1].split("\nSCRAPE-END", 1)[0]
    declared = check_scrape(text, promtool)
    assert "customerio_calls_total" in declared
    assert "customerio_events_delivered_total" in declared


def test_otel_instruments_export_under_the_prometheus_names(promtool: str) -> None:
    """``metrics="otel"`` through OTel's Prometheus exporter gives the dashboards the same families."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "telemetry"))
    from telemetry_helpers import exercise

    from cioguard.telemetry import OTelMetricsRecorder, PrometheusRecorder

    def run(recorder: Any) -> None:
        exercise(recorder)
        recorder.fallback("track")
        recorder.spool_error("corrupt")
        recorder.endpoint_outage("v2_batch", True)
        recorder.request("v2_batch", "error", 0.1, "timeout")

    native, through_otel = CollectorRegistry(), CollectorRegistry()
    run(PrometheusRecorder(native))
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=through_otel)])
    run(OTelMetricsRecorder(provider))
    ours = {name for name in families(generate_latest(native).decode()) if not name.endswith("_created")}
    text = generate_latest(through_otel).decode()
    theirs = {name for name in check_scrape(text, promtool) if name.startswith("customerio_")}
    provider.shutdown()
    assert theirs - {name for name in theirs if name.endswith("_created")} == ours
