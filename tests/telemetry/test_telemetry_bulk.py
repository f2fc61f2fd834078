"""Bulk recording (the sender's per-batch path) gives exactly what per-value recording gives."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram

from cioguard.telemetry.prometheus import PrometheusRecorder, observe_many


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name.startswith(name) and not sample.name.endswith("_created")
    }


def test_observe_many_equals_observe_one_by_one() -> None:
    rng = random.Random(5)
    values = [rng.choice([0.0, 1e-7, 0.004, 0.25, 1.0, 2.5, 7.0, 1e9]) * rng.random() for _ in range(500)]
    values += [0.25, 1.0, 5.0]  # exactly on bucket bounds: `le` is inclusive
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h_one = Histogram("h", "h", registry=one, buckets=(0.001, 0.25, 1.0, 5.0))
    h_bulk = Histogram("h", "h", registry=bulk, buckets=(0.001, 0.25, 1.0, 5.0))
    for value in values:
        h_one.observe(value)
    observe_many(h_bulk, values)
    expected, got = _samples(one, "h"), _samples(bulk, "h")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12)  # _sum may round differently, by one ulp


def test_recorder_calls_and_lags_match_the_single_methods() -> None:
    durations = [0.000_002, 0.000_004, 0.02, 3.0]
    single, bulk = CollectorRegistry(), CollectorRegistry()
    one, many = PrometheusRecorder(single), PrometheusRecorder(bulk)
    for seconds in durations:
        one.call("track", "background", seconds)
        one.delivery_lag(seconds)
    many.calls("track", "background", durations)
    many.delivery_lags(durations)
    for name in ("customerio_calls", "customerio_call_duration", "customerio_delivery_lag"):
        assert _samples(single, name) == _samples(bulk, name)
    assert bulk.get_sample_value("customerio_calls_total", {"method": "track", "mode": "background"}) == 4
