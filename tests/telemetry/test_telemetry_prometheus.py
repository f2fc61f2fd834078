"""PrometheusRecorder: every DESIGN.md metric, bounded labels, idempotent per-registry registration."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from telemetry_helpers import exercise

from cioguard.telemetry import PrometheusRecorder
from cioguard.telemetry.prometheus import metrics_for

#: DESIGN.md's "Metrics" table: exposed sample family -> (type, label names).
DESIGN_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "customerio_calls": ("counter", frozenset({"method", "mode"})),
    "customerio_call_duration_seconds": ("histogram", frozenset({"method", "mode"})),
    "customerio_requests": ("counter", frozenset({"endpoint", "status_code"})),
    "customerio_request_duration_seconds": ("histogram", frozenset({"endpoint"})),
    "customerio_rate_limited": ("counter", frozenset({"endpoint"})),
    "customerio_retries": ("counter", frozenset({"endpoint", "reason"})),
    "customerio_events_enqueued": ("counter", frozenset({"method"})),
    "customerio_events_delivered": ("counter", frozenset({"method"})),
    "customerio_events_dropped": ("counter", frozenset({"reason"})),
    "customerio_queue_size": ("gauge", frozenset()),
    "customerio_queue_capacity": ("gauge", frozenset()),
    "customerio_delivery_lag_seconds": ("histogram", frozenset()),
    "customerio_batch_operations": ("histogram", frozenset()),
    "customerio_pitfalls": ("counter", frozenset({"code"})),
    "customerio_spool_operations": ("gauge", frozenset()),
    "customerio_http_request_blocked_seconds": ("histogram", frozenset()),
    "customerio_webhook_events": ("counter", frozenset({"metric"})),
    "customerio_webhook_rejected": ("counter", frozenset({"reason"})),
}


def families(registry: CollectorRegistry) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    text = generate_latest(registry).decode()
    return {
        f.name: (f.type, [(s.name, dict(s.labels), s.value) for s in f.samples])
        for f in text_string_to_metric_families(text)
    }


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float | None:
    return registry.get_sample_value(name, labels or {})


def test_every_design_metric_and_label_is_exposed() -> None:
    registry = CollectorRegistry()
    exercise(PrometheusRecorder(registry))
    found = families(registry)
    for name, (kind, label_names) in DESIGN_METRICS.items():
        assert name in found, name
        assert found[name][0] == kind, name
        samples = [s for s in found[name][1] if not s[0].endswith("_created")]
        assert samples, name
        for sample_name, labels, _value in samples:
            assert set(labels) - {"le"} == label_names, (sample_name, labels)
    assert sample(registry, "customerio_calls_total", {"method": "track", "mode": "background"}) == 1
    assert sample(registry, "customerio_events_enqueued_total", {"method": "track"}) == 2
    assert sample(registry, "customerio_requests_total", {"endpoint": "v2_batch", "status_code": "429"}) == 1
    assert sample(registry, "customerio_queue_size") == 7
    assert sample(registry, "customerio_queue_capacity") == 10_000
    assert sample(registry, "customerio_spool_operations") == 3
    assert sample(registry, "customerio_batch_operations_sum") == 40
    # 3 us lands in the 5 us bucket but not in the 2.5 us one: the µs buckets exist.
    bucket = "customerio_call_duration_seconds_bucket"
    labels = {"method": "track", "mode": "background"}
    assert sample(registry, bucket, {**labels, "le": "2.5e-06"}) == 0
    assert sample(registry, bucket, {**labels, "le": "5e-06"}) == 1


def test_unexpected_label_values_become_other() -> None:
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)
    recorder.call("jane@example.com", "turbo", 0.1)
    recorder.request("https://track.customer.io/api/v1/customers/42", "timeout", 0.1)
    recorder.pitfall("not-a-code")
    recorder.webhook_event("signed_up_for_42")
    text = generate_latest(registry).decode()
    assert "jane@example.com" not in text
    assert "customers/42" not in text
    assert sample(registry, "customerio_calls_total", {"method": "other", "mode": "other"}) == 1
    assert sample(registry, "customerio_requests_total", {"endpoint": "other", "status_code": "other"}) == 1
    assert sample(registry, "customerio_pitfalls_total", {"code": "other"}) == 1
    assert sample(registry, "customerio_webhook_events_total", {"metric": "other"}) == 1


def test_registration_is_idempotent_per_registry() -> None:
    registry = CollectorRegistry()
    first, second = PrometheusRecorder(registry), PrometheusRecorder(registry)
    assert first.metrics is second.metrics is metrics_for(registry)
    first.pitfall("CIO001")
    second.pitfall("CIO001")
    assert sample(registry, "customerio_pitfalls_total", {"code": "CIO001"}) == 2


def test_separate_registries_are_independent() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    PrometheusRecorder(one).dropped("shutdown")
    assert sample(one, "customerio_events_dropped_total", {"reason": "shutdown"}) == 1
    assert sample(two, "customerio_events_dropped_total", {"reason": "shutdown"}) is None
    PrometheusRecorder(two)
    assert sample(two, "customerio_events_dropped_total", {"reason": "shutdown"}) == 0


def test_every_drop_reason_is_exported_at_zero_before_the_first_drop() -> None:
    # increase()/rate() cannot see a series that first appears already at 1.
    registry = CollectorRegistry()
    PrometheusRecorder(registry)
    for reason in ("queue_full", "shutdown", "rejected", "expired", "oversize"):
        assert sample(registry, "customerio_events_dropped_total", {"reason": reason}) == 0


def test_metrics_left_in_a_registry_by_an_earlier_cioguard_are_adopted() -> None:
    registry = CollectorRegistry()
    earlier = PrometheusRecorder(registry)
    earlier.delivered("identify")
    # Simulate a module reload: the cache is gone but the registry still holds our metrics.
    from cioguard.telemetry import prometheus

    prometheus._cache.clear()
    later = PrometheusRecorder(registry)
    assert later.metrics is not earlier.metrics
    later.delivered("identify")
    assert sample(registry, "customerio_events_delivered_total", {"method": "identify"}) == 2


def test_a_foreign_metric_with_our_name_is_an_error_not_silence() -> None:
    registry = CollectorRegistry()
    Counter("customerio_calls", "someone else's", ["tenant"], registry=registry)
    with pytest.raises(ValueError, match="customerio_calls_total"):
        PrometheusRecorder(registry)


def test_default_registry_is_used_without_argument() -> None:
    from prometheus_client import REGISTRY

    assert PrometheusRecorder().metrics is metrics_for(REGISTRY)


def test_recorder_methods_never_raise(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cioguard.telemetry import safe

    monkeypatch.setattr(safe, "_last_logged", {})
    recorder = PrometheusRecorder(CollectorRegistry())
    with caplog.at_level(logging.ERROR, logger="cioguard.telemetry"):
        recorder.call("track", "background", "slow")  # type: ignore[arg-type]
        recorder.queue_size(object())  # type: ignore[arg-type]
        recorder.enqueued("track", -1)  # counters refuse to decrease
    assert any("suppressed" in r.getMessage() for r in caplog.records)
