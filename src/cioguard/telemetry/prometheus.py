"""Prometheus recorder: every metric of the README's metrics table, registered once per registry.

Usage (``cioguard.instrument(registry=...)`` does this for you)::

    from prometheus_client import CollectorRegistry
    from cioguard.telemetry.prometheus import PrometheusRecorder

    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)      # or PrometheusRecorder() for the default REGISTRY
    recorder.call("track", "background", 3e-6)

Registration is idempotent: the metric objects are kept per registry, so a second recorder (a
second ``instrument()``, a second app, a rebuilt middleware stack, a module reload) on the same
registry records into the same series instead of failing with "Duplicated timeseries" — or,
worse, silently recording nothing as a swallowed duplicate would. If *something else* already
registered one of our names, construction raises ``ValueError``.

Only prometheus_client's public API is used here; the one exception, bulk histogram updates, lives
in :mod:`cioguard.telemetry.bulk` with its own self-check. cioguard never sets
``PROMETHEUS_DISABLE_CREATED_SERIES`` (a process-wide switch): see the README's Metrics section.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) needs nothing here beyond the gauge modes below;
see :mod:`cioguard.metrics` for exposition and the rules to follow.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from cioguard.telemetry import buckets
from cioguard.telemetry.bulk import observe_many, observe_ordered, ordered
from cioguard.telemetry.labels import (
    DROP_REASONS,
    SPOOL_ERROR_KINDS,
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
from cioguard.telemetry.safe import never_raise

__all__ = ["GAUGE_MODES", "PrometheusMetrics", "PrometheusRecorder", "metrics_for", "observe_many"]

M = TypeVar("M", bound=MetricWrapperBase)
GaugeMode = Literal["liveall", "livesum", "livemax"]

#: Gauge aggregation across processes in multiprocess mode. Queue and spool sizes add up over
#: live workers; capacity keeps one series per live worker (``pid`` label) so dashboards can sum it
#: (``sum without (pid)``) to compare with the summed size, and a dead worker's capacity vanishes.
#: Outage and last delivery take the max: any worker in outage, the most recent delivery.
GAUGE_MODES: dict[str, GaugeMode] = {
    "customerio_queue_size": "livesum",
    "customerio_queue_capacity": "liveall",
    "customerio_spool_operations": "livesum",
    "customerio_endpoint_outage": "livemax",
    "customerio_last_delivery_timestamp_seconds": "livemax",
}

#: Attribute cioguard keeps on a registry it registered into: ``{name: (kind, labels, metric)}``.
_STORE = "_cioguard_metrics"


class PrometheusMetrics:
    """The metric objects of one registry (built once; see :func:`metrics_for`)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        store = getattr(registry, _STORE, None)
        self._store: dict[str, tuple[type, tuple[str, ...], Any]] = store if isinstance(store, dict) else {}
        setattr(registry, _STORE, self._store)
        ml = ("method", "mode")
        self.calls = self._counter("customerio_calls", "Patched Customer.io SDK calls.", ml)
        self.call_duration = self._histogram(
            "customerio_call_duration_seconds",
            "Time the caller spent inside a patched SDK call (coarse buckets; see "
            "customerio_background_call_duration_seconds for the µs detail).",
            ml,
            buckets.CALLER_SECONDS,
        )
        self.background_call_duration = self._histogram(
            "customerio_background_call_duration_seconds",
            "Time the caller spent inside a background-mode SDK call, all methods, µs resolution.",
            (),
            buckets.BACKGROUND_CALL_SECONDS,
        )
        self.requests = self._counter(
            "customerio_requests",
            "HTTP requests sent to Customer.io, by status class (429 apart; error: no response).",
            ("endpoint", "status_code", "error_type"),
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
        self.last_delivery = self._gauge(
            "customerio_last_delivery_timestamp_seconds",
            "Unix time of the last acknowledgement by Customer.io (0: none yet).",
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
        # Export every drop reason and spool error kind at 0 from the start: a series that first
        # appears already at 1 is invisible to increase()/rate(), so the first one would not alert.
        for reason in sorted(DROP_REASONS):
            self.children[("dropped", reason)] = self.dropped.labels(reason)
        for kind in sorted(SPOOL_ERROR_KINDS):
            self.children[("spool_errors", kind)] = self.spool_errors.labels(kind)

    def _counter(self, name: str, doc: str, labels: tuple[str, ...]) -> Counter:
        return self._get(Counter, name, labels, lambda: Counter(name, doc, labels, registry=self.registry))

    def _gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        mode = GAUGE_MODES[name]
        return self._get(
            Gauge,
            name,
            labels,
            lambda: Gauge(name, doc, labels, registry=self.registry, multiprocess_mode=mode),
        )

    def _histogram(
        self, name: str, doc: str, labels: tuple[str, ...], bounds: tuple[float, ...]
    ) -> Histogram:
        return self._get(
            Histogram,
            name,
            labels,
            lambda: Histogram(name, doc, labels, registry=self.registry, buckets=bounds),
        )

    def _get(self, kind: type[M], name: str, labels: tuple[str, ...], create: Callable[[], M]) -> M:
        """Reuse what an earlier cioguard registered here (e.g. before a module reload), or create."""
        stored = self._store.get(name)
        if stored is not None and stored[0] is kind and stored[1] == labels:
            metric: M = stored[2]
            return metric
        try:
            metric = create()
        except ValueError as exc:  # "Duplicated timeseries": someone else owns the name
            suffix = "_total" if kind is Counter else ""
            raise ValueError(
                f"cioguard: the metric {name + suffix!r} is already registered in this registry by "
                f"something else ({exc}); pass cioguard its own registry= or unregister it"
            ) from None
        self._store[name] = (kind, labels, metric)
        return metric


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
        if mo == "background":
            self.metrics.background_call_duration.observe(seconds)

    @never_raise
    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        if not durations:
            return
        m, mo = method_label(method), mode_label(mode)
        self._child(("calls", m, mo), self.metrics.calls, m, mo).inc(len(durations))
        values = ordered(durations)  # sorted once for both histograms
        observe_ordered(self._child(("call_duration", m, mo), self.metrics.call_duration, m, mo), values)
        if mo == "background":
            observe_ordered(self.metrics.background_call_duration, values)

    @never_raise
    def enqueued(self, method: str, count: int = 1) -> None:
        m = method_label(method)
        self._child(("enqueued", m), self.metrics.enqueued, m).inc(count)

    @never_raise
    def delivered(self, method: str, count: int = 1) -> None:
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
