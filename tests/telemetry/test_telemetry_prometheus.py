"""PrometheusRecorder: every README metric, bounded labels, idempotent registration, cheap batches."""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from telemetry_helpers import exercise

from cioguard.telemetry import PrometheusRecorder, buckets, bulk
from cioguard.telemetry.prometheus import metrics_for

#: The README's "Metrics" table: exposed sample family -> (type, label names).
README_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "customerio_calls": ("counter", frozenset({"method", "mode"})),
    "customerio_call_duration_seconds": ("histogram", frozenset({"method", "mode"})),
    "customerio_background_call_duration_seconds": ("histogram", frozenset()),
    "customerio_requests": ("counter", frozenset({"endpoint", "status_code", "error_type"})),
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
    "customerio_last_delivery_timestamp_seconds": ("gauge", frozenset()),
    "customerio_endpoint_outage": ("gauge", frozenset({"endpoint"})),
    "customerio_fallback": ("counter", frozenset({"method"})),
    "customerio_spool_errors": ("counter", frozenset({"kind"})),
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
    recorder = PrometheusRecorder(registry, clock=lambda: 1_700_000_000.0)
    exercise(recorder)
    recorder.endpoint_outage("v2_batch", True)
    recorder.fallback("track")
    recorder.spool_error("disk_full")
    found = families(registry)
    for name, (kind, label_names) in README_METRICS.items():
        assert name in found, name
        assert found[name][0] == kind, name
        samples = [s for s in found[name][1] if not s[0].endswith("_created")]
        assert samples, name
        for sample_name, labels, _value in samples:
            assert set(labels) - {"le"} == label_names, (sample_name, labels)
    assert sample(registry, "customerio_calls_total", {"method": "track", "mode": "background"}) == 1
    assert sample(registry, "customerio_events_enqueued_total", {"method": "track"}) == 2
    labels_429 = {"endpoint": "v2_batch", "status_code": "429", "error_type": ""}
    assert sample(registry, "customerio_requests_total", labels_429) == 1
    assert sample(registry, "customerio_last_delivery_timestamp_seconds") == 1_700_000_000.0
    assert sample(registry, "customerio_endpoint_outage", {"endpoint": "v2_batch"}) == 1
    assert sample(registry, "customerio_spool_errors_total", {"kind": "disk_full"}) == 1
    assert sample(registry, "customerio_queue_size") == 7
    assert sample(registry, "customerio_queue_capacity") == 10_000
    assert sample(registry, "customerio_spool_operations") == 3
    assert sample(registry, "customerio_batch_operations_sum") == 40
    # 3 us lands in the 3 us bucket of the unlabelled detail histogram but not in the 2 us one;
    # the labelled histogram only knows it was under 10 us.
    detail = "customerio_background_call_duration_seconds_bucket"
    assert sample(registry, detail, {"le": "2e-06"}) == 0
    assert sample(registry, detail, {"le": "3e-06"}) == 1
    coarse = "customerio_call_duration_seconds_bucket"
    assert sample(registry, coarse, {"method": "track", "mode": "background", "le": "1e-05"}) == 1


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
    other = {"endpoint": "other", "status_code": "other", "error_type": ""}
    assert sample(registry, "customerio_requests_total", other) == 1
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
    for reason in ("queue_full", "shutdown", "rejected", "expired", "oversize", "spool_error"):
        assert sample(registry, "customerio_events_dropped_total", {"reason": reason}) == 0
    for kind in ("disk_full", "read_only", "corrupt", "deleted", "locked", "other"):
        assert sample(registry, "customerio_spool_errors_total", {"kind": kind}) == 0


def test_metrics_left_in_a_registry_by_an_earlier_cioguard_are_adopted() -> None:
    registry = CollectorRegistry()
    earlier = PrometheusRecorder(registry)
    earlier.delivered("identify")
    # Simulate a module reload: the cache is gone but the registry still holds our metrics.
    from cioguard.telemetry import prometheus_metrics

    prometheus_metrics._cache.clear()
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


def test_status_codes_are_grouped_by_class_with_429_and_transport_errors_apart() -> None:
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)
    for code in ("200", "202", "207", "301", "400", "401", "404", "429", "429", "500", "503"):
        recorder.request("v2_batch", code, 0.01)
    recorder.request("v2_batch", "error", 5.0, error_type="timeout")
    recorder.request("v2_batch", "error", 0.01, error_type="connection")
    recorder.request("v2_batch", "error", 0.01)  # a caller that does not know why
    recorder.request("v2_batch", "200", 0.01, error_type="timeout")  # ignored: a response arrived
    got = {
        (labels["status_code"], labels["error_type"]): value
        for name, labels, value in families(registry)["customerio_requests"][1]
        if name == "customerio_requests_total"
    }
    assert got == {
        ("2xx", ""): 4,
        ("3xx", ""): 1,
        ("4xx", ""): 3,
        ("429", ""): 2,
        ("5xx", ""): 2,
        ("error", "timeout"): 1,
        ("error", "connection"): 1,
        ("error", "other"): 1,
    }


def test_last_delivery_timestamp_follows_the_injected_clock() -> None:
    now = [1000.0]
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry, clock=lambda: now[0])
    assert sample(registry, "customerio_last_delivery_timestamp_seconds") == 0  # none yet
    recorder.delivered("track", 3)
    now[0] = 1060.0
    recorder.delivered("identify", 0)  # nothing acknowledged: not a delivery
    assert sample(registry, "customerio_last_delivery_timestamp_seconds") == 1000.0
    recorder.delivered("identify", 1)
    assert sample(registry, "customerio_last_delivery_timestamp_seconds") == 1060.0


def test_bulk_fast_path_matches_public_observe_in_this_prometheus_client() -> None:
    # Fails loudly, naming the version, when a client_python refactor changes the Histogram fields
    # the sender's per-batch fast path writes (cioguard/telemetry/bulk.py); at run time cioguard
    # then falls back to the public observe() instead of recording wrong numbers.
    version = importlib.metadata.version("prometheus-client")
    assert bulk.verify_fast_path(), f"prometheus_client {version}: Histogram internals changed"
    child = metrics_for(CollectorRegistry()).delivery_lag
    assert bulk.fast_path_ok(child), f"prometheus_client {version}: Histogram fields changed shape"
    rng = random.Random(11)
    values = [rng.choice(buckets.LAG_SECONDS) for _ in range(50)] + [rng.expovariate(0.1) for _ in range(500)]
    one, many = CollectorRegistry(), CollectorRegistry()
    for value in values:
        PrometheusRecorder(one).delivery_lag(value)
    PrometheusRecorder(many).delivery_lags(values)
    expected, got = (
        families(one)["customerio_delivery_lag_seconds"],
        families(many)["customerio_delivery_lag_seconds"],
    )
    strip = [(n, lb, v) for n, lb, v in expected[1] if not n.endswith(("_created", "_sum"))]
    assert [(n, lb, v) for n, lb, v in got[1] if not n.endswith(("_created", "_sum"))] == strip, version


def test_bulk_falls_back_to_public_observe_when_the_fields_are_missing() -> None:
    class Plain:
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, value: float) -> None:
            self.seen.append(value)

    plain = Plain()
    bulk.observe_many(plain, [3.0, float("nan"), 1.0])
    assert plain.seen == [1.0, 3.0]


@pytest.mark.parametrize("module", ["prometheus.py", "prometheus_metrics.py"])
def test_prometheus_modules_read_no_private_prometheus_client_fields(module: str) -> None:
    source = Path(bulk.__file__).with_name(module).read_text(encoding="utf-8")
    private = [
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert private == []
