"""What the Prometheus side costs: series per target (the README's numbers) and sender time per batch."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from test_telemetry_prometheus import README_METRICS

from cioguard.telemetry import PrometheusRecorder, buckets

README = Path(__file__).resolve().parents[2] / "README.md"


def test_labelled_histograms_have_few_buckets() -> None:
    # Each bucket is a series per label combination: labelled histograms stay coarse.
    assert len(buckets.CALLER_SECONDS) <= 10
    assert len(buckets.HTTP_SECONDS) <= 10
    assert len(buckets.BACKGROUND_CALL_SECONDS) >= 15  # unlabelled: resolution is cheap there
    assert all(a < b for a, b in zip(buckets.CALLER_SECONDS, buckets.CALLER_SECONDS[1:], strict=False))


def test_a_batch_of_500_is_recorded_in_well_under_a_millisecond() -> None:
    # The sender records each batch on its own thread: measured ~90 us for 500 operations on the
    # reference machine (~150 us before the sorted bulk path). Bound generous for shared CI.
    recorder = PrometheusRecorder(CollectorRegistry())
    rng = random.Random(3)
    durations = [rng.uniform(1e-6, 2e-5) for _ in range(500)]
    lags = [rng.uniform(0.05, 2.0) for _ in range(500)]

    def one_batch() -> None:
        recorder.calls("track", "background", durations)
        recorder.enqueued("track", 500)
        recorder.batch_operations(500)
        recorder.request("v2_batch", "200", 0.05)
        recorder.delivered("track", 500)
        recorder.delivery_lags(lags)
        recorder.queue_size(0)

    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(20):
            one_batch()
        best = min(best, (time.perf_counter() - started) / 20)
    assert best < 1e-3, f"{best * 1e6:.0f} us per 500-operation batch"


def typical_target(recorder: PrometheusRecorder) -> None:
    """The README's "typical target": 4 Track methods in the background, 2 blocking calls, 2 endpoints."""
    for method in ("identify", "track", "track_anonymous", "add_device"):
        recorder.calls(method, "background", [3e-6, 5e-6])
        recorder.enqueued(method, 2)
        recorder.delivered(method, 2)
    recorder.call("send_email", "blocking", 0.2)
    recorder.call("track", "blocking", 0.1)  # a call inside cioguard.synchronous()
    for endpoint in ("v2_batch", "app_send_email"):
        for status in ("200", "202", "429", "500", "503"):
            recorder.request(endpoint, status, 0.1)
        recorder.request(endpoint, "error", 5.0, error_type="timeout")
        recorder.rate_limited(endpoint)
        for reason in ("status_429", "status_5xx", "timeout"):
            recorder.retry(endpoint, reason)
        recorder.endpoint_outage(endpoint, False)
    recorder.queue_size(3)
    recorder.queue_capacity(10_000)
    recorder.delivery_lags([0.5])
    recorder.batch_operations(40)
    for code in ("CIO003", "CIO004", "CIO007"):
        recorder.pitfall(code)
    recorder.spool_operations(0)
    recorder.http_request_blocked(0.001)
    for metric in ("sent", "delivered", "opened", "clicked", "bounced", "spammed", "unsubscribed", "failed"):
        recorder.webhook_event(metric)
    recorder.webhook_rejected("signature")
    recorder.webhook_rejected("stale")


def test_cardinality_of_a_typical_target_is_what_the_readme_says() -> None:
    registry = CollectorRegistry()
    typical_target(PrometheusRecorder(registry))
    samples = [s for family in registry.collect() for s in family.samples]
    created = [s for s in samples if s.name.endswith("_created")]
    assert len(samples) - len(created) == 240  # README: "about 240 series"
    assert len(created) == 67  # README: "67 more"
    readme = README.read_text(encoding="utf-8")
    assert "about 240 series" in readme
    assert "67 more" in readme
    assert "PROMETHEUS_DISABLE_CREATED_SERIES" in readme


def test_readme_metric_table_matches_the_exposed_families() -> None:
    readme = README.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `(customerio_[a-z_]+)`(?: / `(customerio_[a-z_]+)`)? \| (\w+)", readme, flags=re.M
    )
    documented = {name: kind for first, second, kind in rows for name in (first, second) if name}
    exposed = {
        (name + "_total" if kind == "counter" else name): kind
        for name, (kind, _labels) in README_METRICS.items()
    }
    assert documented == exposed
