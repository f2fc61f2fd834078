"""OTelMetricsRecorder, FanoutRecorder and build_recorder."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from telemetry_helpers import exercise

from cioguard.telemetry import (
    FanoutRecorder,
    NullRecorder,
    OTelMetricsRecorder,
    PrometheusRecorder,
    buckets,
    build_recorder,
)
from cioguard.telemetry.fanout import LateOTelRecorder, choose_backends
from cioguard.telemetry.labels import DROP_REASONS, SPOOL_ERROR_KINDS
from cioguard.telemetry.otel_metrics import (
    HTTP_CLIENT_DURATION_BUCKETS,
    SCHEMA_URL,
    record_http_client_duration,
)

EXPECTED = {
    "customerio.calls": {"method", "mode"},
    "customerio.call.duration": {"method", "mode"},
    "customerio.background_call.duration": set(),
    "customerio.last_delivery.timestamp": set(),
    "customerio.requests": {"endpoint", "status_code", "error_type"},  # as prometheus_client
    "customerio.request.duration": {"endpoint"},
    "customerio.rate_limited": {"endpoint"},
    "customerio.retries": {"endpoint", "reason"},
    "customerio.events.enqueued": {"method"},
    "customerio.events.delivered": {"method"},
    "customerio.events.dropped": {"reason"},
    "customerio.queue.size": set(),
    "customerio.queue.capacity": set(),
    "customerio.delivery.lag": set(),
    "customerio.batch.operations": set(),
    "customerio.pitfalls": {"code"},
    "customerio.spool.operations": set(),
    "customerio.http_request.blocked": set(),
    "customerio.webhook.events": {"metric"},
    "customerio.webhook.rejected": {"reason"},
    "customerio.spool.errors": {"kind"},  # exported from 0, like the drops
}


def collect(reader: InMemoryMetricReader) -> dict[str, tuple[Any, list[Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, tuple[Any, list[Any]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = (metric, list(metric.data.data_points))
    return out


def test_every_instrument_records_with_bounded_attributes() -> None:
    reader = InMemoryMetricReader()
    recorder = OTelMetricsRecorder(MeterProvider(metric_readers=[reader]))
    exercise(recorder)
    recorder.call("someone@example.com", "background", 1e-5)
    found = collect(reader)
    assert set(found) == set(EXPECTED)
    for name, attributes in EXPECTED.items():
        _metric, points = found[name]
        assert points, name
        for point in points:
            assert set(point.attributes) == attributes, name
    assert found["customerio.call.duration"][0].unit == "s"
    methods = {p.attributes["method"] for p in found["customerio.calls"][1]}
    assert methods == {"track", "other"}
    assert found["customerio.queue.capacity"][1][0].value == 10_000
    lag = found["customerio.delivery.lag"][1][0]
    assert lag.count == 1
    assert lag.sum == pytest.approx(0.8)
    # The advisory boundaries reached the SDK: a µs-range first bucket for caller time.
    call_point = found["customerio.call.duration"][1][0]
    assert call_point.explicit_bounds[0] == pytest.approx(buckets.CALLER_SECONDS[0])
    assert reader.get_metrics_data().resource_metrics[0].scope_metrics[0].scope.schema_url == SCHEMA_URL


class Exploding(NullRecorder):
    def call(self, method: str, mode: str, seconds: float) -> None:
        raise RuntimeError("backend down")


def test_fanout_reaches_every_recorder_and_survives_a_failing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from cioguard.telemetry import safe

    monkeypatch.setattr(safe, "_last_logged", {})
    registry = CollectorRegistry()
    fanout = FanoutRecorder([PrometheusRecorder(registry), Exploding(), PrometheusRecorder(registry)])
    fanout.call("identify", "blocking", 0.2)  # Exploding raises: the fanout swallows it
    # The recorders before the failing one recorded; the failure did not reach us.
    assert (
        registry.get_sample_value("customerio_calls_total", {"method": "identify", "mode": "blocking"}) == 1
    )
    exercise(fanout)
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO004"}) == 2


def test_build_recorder_prometheus_only_without_meter_provider() -> None:
    registry = CollectorRegistry()
    recorder = build_recorder(registry=registry)
    # Prometheus, and OpenTelemetry once a global MeterProvider is set (none is, in this process).
    assert isinstance(recorder, FanoutRecorder)
    prometheus, late = recorder.recorders
    assert isinstance(prometheus, PrometheusRecorder)
    assert isinstance(late, LateOTelRecorder)
    assert late.recorders == ()
    recorder.webhook_event("spammed")
    assert registry.get_sample_value("customerio_webhook_events_total", {"metric": "spammed"}) == 1


def test_build_recorder_fans_out_to_otel_when_given_a_meter_provider() -> None:
    registry, reader = CollectorRegistry(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    recorder = build_recorder(registry=registry, meter_provider=provider)
    assert isinstance(recorder, FanoutRecorder)
    recorder.rate_limited("v2_batch")
    assert registry.get_sample_value("customerio_rate_limited_total", {"endpoint": "v2_batch"}) == 1
    assert collect(reader)["customerio.rate_limited"][1][0].value == 1
    # A second build (a second instrument()) reuses the instruments and records into the same series.
    again = build_recorder(registry=registry, meter_provider=provider)
    again.rate_limited("v2_batch")
    assert registry.get_sample_value("customerio_rate_limited_total", {"endpoint": "v2_batch"}) == 2
    assert collect(reader)["customerio.rate_limited"][1][0].value == 2


def test_build_recorder_raises_only_for_a_foreign_metric() -> None:
    from prometheus_client import Gauge

    registry = CollectorRegistry()
    Gauge("customerio_queue_size", "not ours", registry=registry)
    with pytest.raises(ValueError, match="customerio_queue_size"):
        build_recorder(registry=registry)


def test_build_recorder_picks_up_a_globally_set_meter_provider() -> None:
    # set_meter_provider() works once per process: run it in a fresh interpreter.
    code = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from cioguard.telemetry import FanoutRecorder, build_recorder
from cioguard.telemetry.fanout import LateOTelRecorder
early = build_recorder(CollectorRegistry())
assert isinstance(early, FanoutRecorder) and isinstance(early.recorders[-1], LateOTelRecorder)
assert early.recorders[-1].recorders == ()  # no provider yet: nothing for OpenTelemetry
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
recorder = build_recorder(CollectorRegistry())
assert isinstance(recorder, FanoutRecorder), recorder
recorder.pitfall("CIO007")
data = reader.get_metrics_data()
print([m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics])
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "customerio.pitfalls" in done.stdout


def test_otel_recorder_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from cioguard.telemetry import safe

    monkeypatch.setattr(safe, "_last_logged", {})
    reader = InMemoryMetricReader()
    recorder = OTelMetricsRecorder(MeterProvider(metric_readers=[reader]))
    recorder.queue_size("many")  # type: ignore[arg-type]
    recorder.call("track", "background", None)  # type: ignore[arg-type]
    recorder.queue_size(3)
    assert collect(reader)["customerio.queue.size"][1][0].value == 3


def test_http_client_request_duration_follows_the_semantic_conventions() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    build_recorder(registry=CollectorRegistry(), meter_provider=provider, metrics="otel")
    attributes = {"http.request.method": "POST", "server.address": "track.customer.io", "server.port": 443}
    record_http_client_duration(0.03, {**attributes, "http.response.status_code": 200})
    metric, points = collect(reader)["http.client.request.duration"]
    assert metric.unit == "s"
    (point,) = points
    assert point.attributes == {**attributes, "http.response.status_code": 200}
    assert list(point.explicit_bounds) == list(HTTP_CLIENT_DURATION_BUCKETS)
    assert point.sum == pytest.approx(0.03)
    build_recorder(registry=CollectorRegistry(), metrics="prometheus")  # OTel off: no more recording
    record_http_client_duration(0.5, attributes)
    assert collect(reader)["http.client.request.duration"][1][0].count == 1


@pytest.mark.parametrize(
    ("metrics", "provider", "expected"),
    [
        (None, None, (True, False)),
        (None, "otlp", (True, True)),
        (None, "prometheus", (True, False)),
        ("prometheus", "otlp", (True, False)),
        ("otel", None, (False, True)),
        ("both", "otlp", (True, True)),
        ("both", "prometheus", (False, True)),
        ("none", "otlp", (False, False)),
    ],
)
def test_metrics_option_chooses_backends_so_nothing_doubles(
    metrics: str | None, provider: str | None, expected: tuple[bool, bool]
) -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    registry = CollectorRegistry()
    readers: dict[str | None, Any] = {
        None: None,
        "otlp": MeterProvider(metric_readers=[InMemoryMetricReader()]),
        "prometheus": MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)]),
    }
    assert choose_backends(metrics, registry, readers[provider]) == expected
    if provider == "prometheus":  # the exporter's registry is not cioguard's: no clash
        assert choose_backends(metrics, CollectorRegistry(), readers[provider])[0] == (metrics != "otel")


def test_drop_reasons_and_spool_error_kinds_are_exported_from_zero() -> None:
    # As on the Prometheus side: the drop alerts use increase(), which cannot see the first
    # increment of a series that did not exist before, and CustomerIOMetricsAbsent watches
    # customerio_events_dropped_total as the sign that a target exports cioguard's metrics at all.
    reader = InMemoryMetricReader()
    OTelMetricsRecorder(MeterProvider(metric_readers=[reader]))
    metrics = collect(reader)
    for name, key, values in (
        ("customerio.events.dropped", "reason", DROP_REASONS),
        ("customerio.spool.errors", "kind", SPOOL_ERROR_KINDS),
    ):
        points = {point.attributes[key]: point.value for point in metrics[name][1]}
        assert points == dict.fromkeys(values, 0), name
