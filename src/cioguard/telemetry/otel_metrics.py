"""OpenTelemetry metrics recorder: the same measurements as ``customerio.*`` instruments.

Usage (``cioguard.instrument(meter_provider=...)`` does this for you)::

    from opentelemetry.sdk.metrics import MeterProvider
    from cioguard.telemetry.otel_metrics import OTelMetricsRecorder

    recorder = OTelMetricsRecorder(MeterProvider(metric_readers=[reader]))

Instruments (attributes are the Prometheus labels, from the same bounded sets):

==========================================  ==============  =====================
instrument                                  kind, unit      attributes
==========================================  ==============  =====================
``customerio.calls``                        counter         method, mode
``customerio.call.duration``                histogram, s    method, mode
``customerio.background_call.duration``     histogram, s    - (µs buckets)
``customerio.requests``                     counter         endpoint, status_code (class), error_type
``customerio.request.duration``             histogram, s    endpoint
``customerio.rate_limited``                 counter         endpoint
``customerio.retries``                      counter         endpoint, reason
``customerio.events.enqueued``              counter         method
``customerio.events.delivered``             counter         method
``customerio.last_delivery.timestamp``      gauge, s        -
``customerio.events.dropped``               counter         reason
``customerio.queue.size``                   gauge           -
``customerio.queue.capacity``               gauge           -
``customerio.delivery.lag``                 histogram, s    -
``customerio.batch.operations``             histogram       -
``customerio.pitfalls``                     counter         code
``customerio.spool.operations``             gauge           -
``customerio.http_request.blocked``         histogram, s    -
``customerio.webhook.events``               counter         metric
``customerio.webhook.rejected``             counter         reason
``customerio.fallback``                     counter         method
``customerio.spool.errors``                 counter         kind
``customerio.endpoint.outage``              gauge           endpoint
``http.client.request.duration``            histogram, s    semantic conventions
==========================================  ==============  =====================

Through OpenTelemetry's Prometheus exporter these names become the Prometheus names of
:mod:`cioguard.telemetry.prometheus` (``customerio.calls`` → ``customerio_calls_total``), so the
dashboards work with either backend. ``http.client.request.duration`` is the semantic-convention
HTTP client histogram (seconds; ``http.request.method``, ``server.address``, ``server.port``,
``url.scheme``, ``url.template``, ``http.response.status_code``, ``error.type``), recorded per
attempt by the sender (:func:`record_http_client_duration`).

Gauges are observable gauges reporting the last value set (works with every opentelemetry-api
since 1.20). Histograms carry the bucket boundaries of :mod:`cioguard.telemetry.buckets` as an
advisory where the API supports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, Observation

from cioguard.telemetry import buckets
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
from cioguard.version import __version__

Attributes = dict[str, str]
#: The semantic-conventions version of the instruments (the tracer uses the same).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
#: Bucket advice of the semantic conventions for ``http.client.request.duration``.
HTTP_CLIENT_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: The recorders whose meters get ``http.client.request.duration`` (set by ``build_recorder``).
_http_recorders: tuple[OTelMetricsRecorder, ...] = ()


def set_http_recorders(recorders: Sequence[OTelMetricsRecorder]) -> None:
    """Make ``recorders`` the ones :func:`record_http_client_duration` writes to."""
    global _http_recorders
    _http_recorders = tuple(recorders)


def record_http_client_duration(seconds: float, attributes: dict[str, Any]) -> None:
    """One HTTP attempt's duration into ``http.client.request.duration`` (no-op without OTel metrics)."""
    for recorder in _http_recorders:
        recorder.http_client_duration(seconds, attributes)


def _histogram(meter: Meter, name: str, unit: str, description: str, bounds: Sequence[float]) -> Histogram:
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(bounds)
        )
    except TypeError:  # opentelemetry-api < 1.23 has no bucket advisory
        return meter.create_histogram(name, unit=unit, description=description)


class OTelMetricsRecorder:
    """A :class:`~cioguard.telemetry.recorder.Recorder` writing to OpenTelemetry instruments."""

    def __init__(self, meter_provider: MeterProvider, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # wall clock of customerio.last_delivery.timestamp (injectable)
        meter = meter_provider.get_meter("cioguard", __version__, schema_url=SCHEMA_URL)
        self._http_duration = _histogram(
            meter,
            "http.client.request.duration",
            "s",
            "Duration of HTTP client requests.",
            HTTP_CLIENT_DURATION_BUCKETS,
        )
        self._calls = meter.create_counter("customerio.calls", "{call}", "Patched Customer.io SDK calls")
        self._call_duration = _histogram(
            meter, "customerio.call.duration", "s", "Caller time in patched SDK calls", buckets.CALLER_SECONDS
        )
        self._background_call_duration = _histogram(
            meter,
            "customerio.background_call.duration",
            "s",
            "Caller time in background-mode calls, all methods, µs resolution",
            buckets.BACKGROUND_CALL_SECONDS,
        )
        self._requests = meter.create_counter("customerio.requests", "{request}", "HTTP requests sent")
        self._request_duration = _histogram(
            meter, "customerio.request.duration", "s", "HTTP request duration", buckets.HTTP_SECONDS
        )
        self._rate_limited = meter.create_counter("customerio.rate_limited", "{response}", "429 responses")
        self._retries = meter.create_counter("customerio.retries", "{retry}", "Retried requests")
        self._enqueued = meter.create_counter(
            "customerio.events.enqueued", "{operation}", "Operations queued"
        )
        self._delivered = meter.create_counter(
            "customerio.events.delivered", "{operation}", "Operations acknowledged"
        )
        self._dropped = meter.create_counter("customerio.events.dropped", "{operation}", "Operations lost")
        self._delivery_lag = _histogram(
            meter, "customerio.delivery.lag", "s", "Enqueue to acknowledgement", buckets.LAG_SECONDS
        )
        self._batch = _histogram(
            meter,
            "customerio.batch.operations",
            "{operation}",
            "Operations per request",
            buckets.BATCH_OPERATIONS,
        )
        self._pitfalls = meter.create_counter("customerio.pitfalls", "{pitfall}", "Pitfall rules that fired")
        self._blocked = _histogram(
            meter,
            "customerio.http_request.blocked",
            "s",
            "Time a web request spent blocked in Customer.io calls",
            buckets.BLOCKED_SECONDS,
        )
        self._webhook_events = meter.create_counter("customerio.webhook.events", "{event}", "Webhook events")
        self._webhook_rejected = meter.create_counter(
            "customerio.webhook.rejected", "{request}", "Rejected webhook requests"
        )
        self._fallbacks = meter.create_counter(
            "customerio.fallback", "{call}", "Calls sent through the blocking SDK after an internal error"
        )
        self._spool_errors = meter.create_counter(
            "customerio.spool.errors", "{error}", "Failures of the durable spool"
        )
        self._outage: dict[str, int] = {}
        meter.create_observable_gauge(
            "customerio.endpoint.outage",
            callbacks=[self._observe_outage],
            unit="1",
            description="1 while an endpoint is in outage mode",
        )
        # Last values of the gauges; read by the observable gauges' callbacks at collection time.
        self._gauges: dict[str, float] = {}
        for name, description in (
            ("customerio.queue.size", "Operations waiting to be delivered"),
            ("customerio.queue.capacity", "Configured maximum queue size"),
            ("customerio.spool.operations", "Operations held in the durable spool"),
        ):
            meter.create_observable_gauge(
                name, callbacks=[self._observer(name)], unit="{operation}", description=description
            )
        meter.create_observable_gauge(
            "customerio.last_delivery.timestamp",
            callbacks=[self._observer("customerio.last_delivery.timestamp")],
            unit="s",
            description="Unix time of the last acknowledgement by Customer.io",
        )
        # Attribute dicts cached by normalised values (a bounded set): no allocation per call.
        self._attrs: dict[tuple[str, ...], Attributes] = {}
        # Exported from 0, as on the Prometheus side: the drop alerts use increase(), blind to the
        # first increment of a new series, and CustomerIOMetricsAbsent watches this family.
        for reason in sorted(DROP_REASONS):
            self._dropped.add(0, self._a("reason", reason))
        for kind in sorted(SPOOL_ERROR_KINDS):
            self._spool_errors.add(0, self._a("kind", kind))

    def _observer(self, name: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            value = self._gauges.get(name)
            return [] if value is None else [Observation(value)]

        return observe

    def _a(self, *pairs: str) -> Attributes:
        attrs = self._attrs.get(pairs)
        if attrs is None:
            attrs = self._attrs[pairs] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return attrs

    @never_raise
    def call(self, method: str, mode: str, seconds: float) -> None:
        attrs = self._a("method", method_label(method), "mode", mode_label(mode))
        self._calls.add(1, attrs)
        self._call_duration.record(seconds, attrs)
        if attrs["mode"] == "background":
            self._background_call_duration.record(seconds)

    @never_raise
    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        attrs = self._a("method", method_label(method), "mode", mode_label(mode))
        self._calls.add(len(durations), attrs)
        background = attrs["mode"] == "background"
        _record_all(self._call_duration, durations, attrs)
        if background:
            _record_all(self._background_call_duration, durations)

    @never_raise
    def enqueued(self, method: str, count: int = 1) -> None:
        self._enqueued.add(count, self._a("method", method_label(method)))

    @never_raise
    def delivered(self, method: str, count: int = 1) -> None:
        self._delivered.add(count, self._a("method", method_label(method)))
        if count > 0:
            self._gauges["customerio.last_delivery.timestamp"] = self._clock()

    @never_raise
    def dropped(self, reason: str, count: int = 1) -> None:
        self._dropped.add(count, self._a("reason", drop_reason_label(reason)))

    @never_raise
    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        e, s = endpoint_label(endpoint), status_class_label(status_code)
        # Like the Prometheus recorder: error_type is "" unless no response arrived (the same label
        # set on both sides, so the exporter's series match prometheus_client's).
        t = error_type_label(error_type) if s == "error" else ""
        self._requests.add(1, self._a("endpoint", e, "status_code", s, "error_type", t))
        self._request_duration.record(seconds, self._a("endpoint", e))

    @never_raise
    def rate_limited(self, endpoint: str) -> None:
        self._rate_limited.add(1, self._a("endpoint", endpoint_label(endpoint)))

    @never_raise
    def retry(self, endpoint: str, reason: str) -> None:
        self._retries.add(
            1, self._a("endpoint", endpoint_label(endpoint), "reason", retry_reason_label(reason))
        )

    @never_raise
    def queue_size(self, size: int) -> None:
        self._gauges["customerio.queue.size"] = int(size)

    @never_raise
    def queue_capacity(self, capacity: int) -> None:
        self._gauges["customerio.queue.capacity"] = int(capacity)

    @never_raise
    def delivery_lag(self, seconds: float) -> None:
        self._delivery_lag.record(seconds)

    @never_raise
    def delivery_lags(self, seconds: Sequence[float]) -> None:
        _record_all(self._delivery_lag, seconds)

    @never_raise
    def batch_operations(self, count: int) -> None:
        self._batch.record(count)

    @never_raise
    def pitfall(self, code: str, count: int = 1) -> None:
        self._pitfalls.add(count, self._a("code", pitfall_label(code)))

    @never_raise
    def spool_operations(self, count: int) -> None:
        self._gauges["customerio.spool.operations"] = int(count)

    @never_raise
    def http_request_blocked(self, seconds: float) -> None:
        self._blocked.record(seconds)

    @never_raise
    def http_requests_blocked(self, seconds: Sequence[float]) -> None:
        for value in seconds:
            self._blocked.record(value)

    @never_raise
    def webhook_event(self, metric: str) -> None:
        self._webhook_events.add(1, self._a("metric", webhook_metric_label(metric)))

    @never_raise
    def webhook_rejected(self, reason: str) -> None:
        self._webhook_rejected.add(1, self._a("reason", webhook_reason_label(reason)))

    def _observe_outage(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, self._a("endpoint", e)) for e, v in list(self._outage.items())]

    @never_raise
    def endpoint_outage(self, endpoint: str, active: bool) -> None:
        self._outage[endpoint_label(endpoint)] = 1 if active else 0

    @never_raise
    def http_client_duration(self, seconds: float, attributes: dict[str, Any]) -> None:
        self._http_duration.record(seconds, attributes)

    @never_raise
    def fallback(self, method: str) -> None:
        self._fallbacks.add(1, self._a("method", method_label(method)))

    @never_raise
    def spool_error(self, kind: str) -> None:
        self._spool_errors.add(1, self._a("kind", spool_error_label(kind)))


#: Longest stretch of histogram records between two GIL hand-offs: the sender records a batch of up
#: to 512 values (an OTel SDK record costs 1-3 µs), and callers share the GIL with it.
_SLICE_SECONDS = 0.0001


def _record_all(histogram: Any, values: Sequence[float], attributes: Any = None) -> None:
    """``histogram.record(v, attributes)`` for each value, handing the GIL over between short slices."""
    now = time.perf_counter
    until = now() + _SLICE_SECONDS
    for value in values:
        histogram.record(value, attributes)
        if now() >= until:
            time.sleep(0)  # releases the GIL (the process-wide switch interval is never changed)
            until = now() + _SLICE_SECONDS
