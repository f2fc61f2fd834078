"""Prometheus recorder: every metric of DESIGN.md's table, registered once per registry.

Usage (``cioguard.instrument(registry=...)`` does this for you)::

    from prometheus_client import CollectorRegistry
    from cioguard.telemetry.prometheus import PrometheusRecorder

    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)      # or PrometheusRecorder() for the default REGISTRY
    recorder.call("track", "background", 3e-6)

Registration is idempotent: the metric objects are cached per registry, so a second recorder
(a second ``instrument()``, a second app, a rebuilt middleware stack) on the same registry records
into the same series instead of failing with "Duplicated timeseries" — or, worse, silently
recording nothing as a swallowed duplicate would. If *something else* already registered one of
our names with a different type or labels, construction raises ``ValueError``.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) needs nothing here beyond the gauge modes below;
see :mod:`cioguard.metrics` for exposition and the rules to follow.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from cioguard.telemetry import buckets
from cioguard.telemetry.labels import (
    DROP_REASONS,
    drop_reason_label,
    endpoint_label,
    method_label,
    mode_label,
    pitfall_label,
    retry_reason_label,
    spool_error_label,
    status_label,
    webhook_metric_label,
    webhook_reason_label,
)
from cioguard.telemetry.safe import never_raise

M = TypeVar("M", bound=MetricWrapperBase)

#: Gauge aggregation across processes in multiprocess mode. Queue and spool sizes add up over
#: live workers; capacity keeps one series per live worker (``pid`` label) so dashboards can sum it
#: (``sum without (pid)``) to compare with the summed size, and a dead worker's capacity vanishes.
GAUGE_MODES = {
    "customerio_queue_size": "livesum",
    "customerio_queue_capacity": "liveall",
    "customerio_spool_operations": "livesum",
    "customerio_endpoint_outage": "livemax",
}


_MARK = "_cioguard_metric"


def _mark(metric: M) -> M:
    """Tag a metric object as created by cioguard (only those are ever adopted)."""
    setattr(metric, _MARK, True)
    return metric


class PrometheusMetrics:
    """The metric objects of one registry (built once; see :func:`metrics_for`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.calls = self._counter("customerio_calls", "Patched Customer.io SDK calls.", ("method", "mode"))
        self.call_duration = self._histogram(
            "customerio_call_duration_seconds",
            "Time the caller spent inside a patched SDK call.",
            ("method", "mode"),
            buckets.CALLER_SECONDS,
        )
        self.requests = self._counter(
            "customerio_requests", "HTTP requests sent to Customer.io.", ("endpoint", "status_code")
        )
        self.request_duration = self._histogram(
            "customerio_request_duration_seconds",
            "Duration of HTTP requests to Customer.io.",
            ("endpoint",),
            buckets.HTTP_SECONDS,
        )
        self.rate_limited = self._counter(
            "customerio_rate_limited", "HTTP 429 responses from Customer.io.", ("endpoint",)
        )
        self.retries = self._counter("customerio_retries", "Retried requests.", ("endpoint", "reason"))
        self.enqueued = self._counter(
            "customerio_events_enqueued", "Operations accepted onto the queue.", ("method",)
        )
        self.delivered = self._counter(
            "customerio_events_delivered", "Operations acknowledged by Customer.io.", ("method",)
        )
        self.dropped = self._counter("customerio_events_dropped", "Operations lost, by reason.", ("reason",))
        self.queue_size = self._gauge("customerio_queue_size", "Operations waiting to be delivered.")
        self.queue_capacity = self._gauge("customerio_queue_capacity", "Configured maximum queue size.")
        self.delivery_lag = self._histogram(
            "customerio_delivery_lag_seconds",
            "Time from enqueue to acknowledgement by Customer.io.",
            (),
            buckets.LAG_SECONDS,
        )
        self.batch_operations = self._histogram(
            "customerio_batch_operations", "Operations per HTTP request.", (), buckets.BATCH_OPERATIONS
        )
        self.pitfalls = self._counter("customerio_pitfalls", "Pitfall rules that fired, by code.", ("code",))
        self.spool_operations = self._gauge(
            "customerio_spool_operations", "Operations held in the durable spool."
        )
        self.http_request_blocked = self._histogram(
            "customerio_http_request_blocked_seconds",
            "Time a web request spent blocked in Customer.io calls.",
            (),
            buckets.BLOCKED_SECONDS,
        )
        self.webhook_events = self._counter(
            "customerio_webhook_events", "Verified reporting-webhook events, by metric.", ("metric",)
        )
        self.webhook_rejected = self._counter(
            "customerio_webhook_rejected", "Rejected reporting-webhook requests, by reason.", ("reason",)
        )
        self.endpoint_outage = self._gauge(
            "customerio_endpoint_outage",
            "1 while an endpoint is in outage mode (one probe at a time), else 0.",
            ("endpoint",),
        )
        self.fallbacks = self._counter(
            "customerio_fallback",
            "Calls sent through the blocking SDK after an internal cioguard error.",
            ("method",),
        )
        self.spool_errors = self._counter(
            "customerio_spool_errors", "Failures of the durable spool, by kind.", ("kind",)
        )
        # Label children cached by *normalised* label values, so the keys stay a bounded set.
        self.children: dict[tuple[str, ...], Any] = {}
        # Export every drop reason at 0 from the start: a series that first appears already at 1
        # is invisible to increase()/rate(), so the first drop ever would not show or alert.
        for reason in sorted(DROP_REASONS):
            self.children[("dropped", reason)] = self.dropped.labels(reason)

    def _counter(self, name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        metric = self._adopt(Counter, f"{name}_total", labels)
        if metric is None:
            metric = _mark(Counter(name, doc, labels, registry=self.registry))
        return metric

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        metric = self._adopt(Gauge, name, labels)
        if metric is None:
            mode = GAUGE_MODES[name]
            metric = _mark(Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode))  # type: ignore[arg-type]
        return metric

    def _histogram(
        self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> Histogram:
        metric = self._adopt(Histogram, f"{name}_bucket", labels)
        if metric is None:
            metric = _mark(Histogram(name, doc, labels, registry=self.registry, buckets=bounds))
        return metric

    def _adopt(self, kind: type[M], key: str, labels: tuple[str, ...]) -> M | None:
        """Reuse a metric a previous cioguard (e.g. after a module reload) left in the registry."""
        existing = getattr(self.registry, "_names_to_collectors", {}).get(key)
        if existing is None:
            return None
        if isinstance(existing, kind) and getattr(existing, _MARK, False) and existing._labelnames == labels:
            return existing
        raise ValueError(
            f"cioguard: the metric {key!r} is already registered in this registry by something else "
            f"({type(existing).__name__}); pass cioguard its own registry= or unregister it"
        )


logger = logging.getLogger("cioguard.telemetry")


def multiprocess_mismatch() -> str | None:
    """Why multiprocess metrics would silently be wrong in this process, or ``None`` if they are fine.

    prometheus_client chooses in-memory or file-backed values when it is first imported. If
    ``PROMETHEUS_MULTIPROC_DIR`` was set only afterwards, this process's values never reach the
    directory that every scrape reads.
    """
    from prometheus_client import values

    legacy = "prometheus_multiproc_dir"  # still honoured by prometheus_client
    configured = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(legacy))
    file_backed = values.ValueClass.__name__ != "MutexValue"
    if configured and not file_backed:
        return (
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: this process's "
            "metrics stay in memory and are missing from multiprocess scrapes. Set the variable in "
            "the environment before Python starts."
        )
    return None


_cache: weakref.WeakKeyDictionary[CollectorRegistry, PrometheusMetrics] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry | None = None) -> PrometheusMetrics:
    """The (single) set of cioguard metrics in ``registry`` (default: prometheus_client's REGISTRY)."""
    registry = REGISTRY if registry is None else registry
    with _cache_lock:
        metrics = _cache.get(registry)
        if metrics is None:
            problem = multiprocess_mismatch()
            if problem is not None:
                logger.warning("cioguard: %s", problem)
            metrics = _cache[registry] = PrometheusMetrics(registry)
        return metrics


def observe_many(histogram: Any, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for each value, with one lock round per bucket instead of per value.

    Uses the same fields ``Histogram.observe`` updates (``_upper_bounds``, ``_buckets``, ``_sum``,
    stable since prometheus_client 0.4); falls back to plain ``observe`` where they are missing.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    counts = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or counts is None or total is None or len(bounds) != len(counts):
        for value in values:
            histogram.observe(value)
        return
    finite = [value for value in values if not math.isnan(value)]
    # bisect_left gives the first bound >= value: the bucket Histogram.observe would pick.
    for index, count in Tally(bisect_left(bounds, value) for value in finite).items():
        counts[min(index, len(counts) - 1)].inc(count)
    total.inc(sum(finite))


class PrometheusRecorder:
    """A :class:`~cioguard.telemetry.recorder.Recorder` writing to prometheus_client metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.metrics = metrics_for(registry)
        self._children = self.metrics.children

    def _child(self, key: tuple[str, ...], metric: Any, *labels: str) -> Any:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    @never_raise
    def call(self, method: str, mode: str, seconds: float) -> None:
        m, mo = method_label(method), mode_label(mode)
        self._child(("calls", m, mo), self.metrics.calls, m, mo).inc()
        self._child(("call_duration", m, mo), self.metrics.call_duration, m, mo).observe(seconds)

    @never_raise
    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        if not durations:
            return
        m, mo = method_label(method), mode_label(mode)
        self._child(("calls", m, mo), self.metrics.calls, m, mo).inc(len(durations))
        observe_many(self._child(("call_duration", m, mo), self.metrics.call_duration, m, mo), durations)

    @never_raise
    def enqueued(self, method: str, count: int = 1) -> None:
        m = method_label(method)
        self._child(("enqueued", m), self.metrics.enqueued, m).inc(count)

    @never_raise
    def delivered(self, method: str, count: int = 1) -> None:
        m = method_label(method)
        self._child(("delivered", m), self.metrics.delivered, m).inc(count)

    @never_raise
    def dropped(self, reason: str, count: int = 1) -> None:
        r = drop_reason_label(reason)
        self._child(("dropped", r), self.metrics.dropped, r).inc(count)

    @never_raise
    def request(self, endpoint: str, status_code: str, seconds: float) -> None:
        e, s = endpoint_label(endpoint), status_label(status_code)
        self._child(("requests", e, s), self.metrics.requests, e, s).inc()
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
        self.metrics.queue_size.set(size)

    @never_raise
    def queue_capacity(self, capacity: int) -> None:
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
    def pitfall(self, code: str) -> None:
        c = pitfall_label(code)
        self._child(("pitfalls", c), self.metrics.pitfalls, c).inc()

    @never_raise
    def spool_operations(self, count: int) -> None:
        self.metrics.spool_operations.set(count)

    @never_raise
    def http_request_blocked(self, seconds: float) -> None:
        self.metrics.http_request_blocked.observe(seconds)

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
