"""The cioguard metric objects of one prometheus_client registry, registered once.

::

    from prometheus_client import CollectorRegistry
    from cioguard.telemetry.prometheus_metrics import metrics_for

    metrics = metrics_for(CollectorRegistry())   # the same object for the same registry, always
    metrics.queue_size.set(3)

:class:`~cioguard.telemetry.prometheus.PrometheusRecorder` records through these objects. A second
recorder, a second ``instrument()`` or a module reload on the same registry reuses the objects
cioguard registered there (kept on the registry itself, so no prometheus_client internals are
read); a metric of ours that *something else* registered is a ``ValueError``. Only the public
prometheus_client API is used.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from cioguard.telemetry import buckets
from cioguard.telemetry.labels import DROP_REASONS, SPOOL_ERROR_KINDS

__all__ = ["GAUGE_MODES", "PrometheusMetrics", "metrics_for", "multiprocess_mismatch"]

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
