"""Prometheus recorder: every metric of the README's metrics table, registered once per registry.

Usage (``cioguard.instrument(registry=...)`` does this for you)::

    from prometheus_client import CollectorRegistry
    from cioguard.telemetry.prometheus import PrometheusRecorder

    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)      # or PrometheusRecorder() for the default REGISTRY
    recorder.call("track", "background", 3e-6)

Registration is idempotent (see :mod:`cioguard.telemetry.prometheus_metrics`): a second recorder on
the same registry records into the same series instead of failing with "Duplicated timeseries" —
or, worse, silently recording nothing as a swallowed duplicate would.

Only prometheus_client's public API is used here; the one exception, bulk histogram updates, lives
in :mod:`cioguard.telemetry.bulk` with its own self-check. cioguard never sets
``PROMETHEUS_DISABLE_CREATED_SERIES`` (a process-wide switch): see the README's Metrics section.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) needs the gauge modes of
:data:`~cioguard.telemetry.prometheus_metrics.GAUGE_MODES`, and a process that forks before it
ever worked (a preloading gunicorn master) sets its queue capacity to 0 at the fork; see
:mod:`cioguard.metrics` for exposition and the rules to follow.
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from cioguard.telemetry.bulk import observe_many, observe_ordered, ordered
from cioguard.telemetry.labels import (
    drop_reason_label,
    endpoint_label,
    error_type_label,
    method_label,
    mode_label,
    pitfall_label,
    retry_reason_label,
    spool_error_label,
    status_class_label,
    webhook_metric_label,
    webhook_reason_label,
)
from cioguard.telemetry.prometheus_metrics import (
    GAUGE_MODES,
    PrometheusMetrics,
    metrics_for,
    multiprocess_mismatch,
)
from cioguard.telemetry.safe import never_raise

__all__ = [
    "GAUGE_MODES",
    "PrometheusMetrics",
    "PrometheusRecorder",
    "metrics_for",
    "multiprocess_mismatch",
    "observe_many",
]


class PrometheusRecorder:
    """A :class:`~cioguard.telemetry.recorder.Recorder` writing to prometheus_client metrics.

    ``clock`` (wall-clock Unix seconds, default :func:`time.time`) stamps
    ``customerio_last_delivery_timestamp_seconds``; tests inject a fake one.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.metrics = metrics_for(registry)
        self._children = self.metrics.children
        self._clock = clock
        # Multiprocess mode: a process that forks before it ever works (a call, a queued operation,
        # a delivery) is a gunicorn master that preloaded the app: its capacity series would stay
        # as long as it lives, diluting sum(size) / sum(capacity). It goes to 0 at the fork (and
        # back should it work after all); workers export theirs from the start, idle or not.
        self._deferred = _multiprocess()
        self._capacity: int | None = None
        self._parked = False
        if self._deferred:
            ref = weakref.ref(self)
            os.register_at_fork(after_in_parent=lambda: _forked(ref))

    def _child(self, key: tuple[str, ...], metric: Any, *labels: str) -> Any:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _working(self) -> None:
        self._deferred = False
        if self._parked and self._capacity is not None:
            self._parked = False
            self.metrics.queue_capacity.set(self._capacity)

    def forked_without_working(self) -> None:
        """After a fork, in the parent: a process that never worked parks its capacity at 0."""
        if self._deferred and self._capacity is not None:
            self._parked = True
            self.metrics.queue_capacity.set(0)

    @never_raise
    def call(self, method: str, mode: str, seconds: float) -> None:
        if self._deferred:
            self._working()
        m, mo = method_label(method), mode_label(mode)
        self._child(("calls", m, mo), self.metrics.calls, m, mo).inc()
        self._child(("call_duration", m, mo), self.metrics.call_duration, m, mo).observe(seconds)
        if mo == "background":
            self.metrics.background_call_duration.observe(seconds)

    @never_raise
    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        if not durations:
            return
        if self._deferred:
            self._working()
        m, mo = method_label(method), mode_label(mode)
        self._child(("calls", m, mo), self.metrics.calls, m, mo).inc(len(durations))
        values = ordered(durations)  # sorted once for both histograms
        observe_ordered(self._child(("call_duration", m, mo), self.metrics.call_duration, m, mo), values)
        if mo == "background":
            observe_ordered(self.metrics.background_call_duration, values)

    @never_raise
    def enqueued(self, method: str, count: int = 1) -> None:
        if self._deferred:
            self._working()
        m = method_label(method)
        self._child(("enqueued", m), self.metrics.enqueued, m).inc(count)

    @never_raise
    def delivered(self, method: str, count: int = 1) -> None:
        if self._deferred:
            self._working()  # e.g. rows recovered from a spool: delivering, with no call of its own
        m = method_label(method)
        self._child(("delivered", m), self.metrics.delivered, m).inc(count)
        if count > 0:
            self.metrics.last_delivery.set(self._clock())

    @never_raise
    def dropped(self, reason: str, count: int = 1) -> None:
        r = drop_reason_label(reason)
        self._child(("dropped", r), self.metrics.dropped, r).inc(count)

    @never_raise
    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        e, s = endpoint_label(endpoint), status_class_label(status_code)
        # Invariant: error_type is "" unless no response arrived, so it adds series only for errors.
        t = error_type_label(error_type) if s == "error" else ""
        self._child(("requests", e, s, t), self.metrics.requests, e, s, t).inc()
        self._child(("request_duration", e), self.metrics.request_duration, e).observe(seconds)

    @never_raise
    def rate_limited(self, endpoint: str) -> None:
        e = endpoint_label(endpoint)
        self._child(("rate_limited", e), self.metrics.rate_limited, e).inc()

    @never_raise
    def retry(self, endpoint: str, reason: str) -> None:
        e, r = endpoint_label(endpoint), retry_reason_label(reason)
        self._child(("retries", e, r), self.metrics.retries, e, r).inc()

    @never_raise
    def queue_size(self, size: int) -> None:
        if size and self._deferred:
            self._working()
        self.metrics.queue_size.set(size)

    @never_raise
    def queue_capacity(self, capacity: int) -> None:
        self._capacity = capacity
        if not self._parked:
            self.metrics.queue_capacity.set(capacity)

    @never_raise
    def delivery_lag(self, seconds: float) -> None:
        self.metrics.delivery_lag.observe(seconds)

    @never_raise
    def delivery_lags(self, seconds: Sequence[float]) -> None:
        observe_many(self.metrics.delivery_lag, seconds)

    @never_raise
    def batch_operations(self, count: int) -> None:
        self.metrics.batch_operations.observe(count)

    @never_raise
    def pitfall(self, code: str, count: int = 1) -> None:
        c = pitfall_label(code)
        self._child(("pitfalls", c), self.metrics.pitfalls, c).inc(count)

    @never_raise
    def spool_operations(self, count: int) -> None:
        self.metrics.spool_operations.set(count)

    @never_raise
    def http_request_blocked(self, seconds: float) -> None:
        self.metrics.http_request_blocked.observe(seconds)

    @never_raise
    def http_requests_blocked(self, seconds: Sequence[float]) -> None:
        observe_many(self.metrics.http_request_blocked, seconds)

    @never_raise
    def webhook_event(self, metric: str) -> None:
        m = webhook_metric_label(metric)
        self._child(("webhook_events", m), self.metrics.webhook_events, m).inc()

    @never_raise
    def webhook_rejected(self, reason: str) -> None:
        r = webhook_reason_label(reason)
        self._child(("webhook_rejected", r), self.metrics.webhook_rejected, r).inc()

    @never_raise
    def endpoint_outage(self, endpoint: str, active: bool) -> None:
        e = endpoint_label(endpoint)
        self._child(("endpoint_outage", e), self.metrics.endpoint_outage, e).set(1 if active else 0)

    @never_raise
    def fallback(self, method: str) -> None:
        m = method_label(method)
        self._child(("fallbacks", m), self.metrics.fallbacks, m).inc()

    @never_raise
    def spool_error(self, kind: str) -> None:
        k = spool_error_label(kind)
        self._child(("spool_errors", k), self.metrics.spool_errors, k).inc()


def _multiprocess() -> bool:
    legacy = "prometheus_multiproc_dir"  # still read by prometheus_client
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(legacy))


def _forked(ref: weakref.ReferenceType[PrometheusRecorder]) -> None:
    recorder = ref()
    if recorder is not None:
        with contextlib.suppress(Exception):  # inside fork(): never raise
            recorder.forked_without_working()
