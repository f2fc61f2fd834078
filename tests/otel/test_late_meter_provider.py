"""A global MeterProvider set *after* ``cioguard.instrument()`` (apps that configure OpenTelemetry
late): with the default ``metrics`` it gets the ``customerio.*`` instruments, and with
``metrics="both"`` and OpenTelemetry's Prometheus exporter on the same registry one scrape still
carries each family once (checked by the real ``promtool``). The global provider can be set once
per process, so each case runs as its own process against the emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from test_metrics_option import check_scrape

from cioguard.testing import FakeCustomerIO

APP = """
import json, logging, sys
from customerio import CustomerIO
from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
import cioguard

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
registry = CollectorRegistry()
options = {{"metrics": {metrics!r}}} if {metrics!r} else {{}}
cioguard.instrument(track_url={url!r}, registry=registry, pitfalls="off", **options)
cio = CustomerIO({site!r}, {key!r})
cio.identify("early", email="early@example.com")  # before OpenTelemetry is configured
assert cioguard.flush(timeout=10)
reader = InMemoryMetricReader() if {reader!r} == "memory" else PrometheusMetricReader(registry=registry)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
cio.identify("u1", email="u1@example.com")
cio.track("u1", "order_placed", data={{"total": 3}})
assert cioguard.flush(timeout=10)
out = {{"scrape": generate_latest(registry).decode(), "otel": {{}}}}
if {reader!r} == "memory":
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = metric.data.data_points
                out["otel"][metric.name] = sum(getattr(p, "value", getattr(p, "count", 0)) for p in points)
print(json.dumps(out))
"""


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False) as emulator:
        yield emulator


def run(fake: FakeCustomerIO, metrics: str | None, reader: str) -> tuple[dict[str, object], str]:
    code = textwrap.dedent(
        APP.format(metrics=metrics, url=fake.track_url, site=fake.site_id, key=fake.api_key, reader=reader)
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_default_metrics_reach_a_provider_set_after_instrument(fake: FakeCustomerIO, promtool: str) -> None:
    out, _ = run(fake, None, "memory")
    otel = out["otel"]
    assert isinstance(otel, dict)
    assert otel.get("customerio.events.delivered") == 2  # what was delivered once it was there
    assert "customerio.requests" in otel
    check_scrape(str(out["scrape"]), promtool)


def test_both_with_a_late_prometheus_exporter_scrapes_each_family_once(
    fake: FakeCustomerIO, promtool: str
) -> None:
    out, log = run(fake, "both", "prometheus")
    scrape = str(out["scrape"])
    declared = check_scrape(scrape, promtool)
    assert "customerio_events_delivered_total" in declared
    assert "otel_scope_name" not in scrape  # the Prometheus copy, already scraped, stays the one
    assert log.count("set after instrument()") == 1
