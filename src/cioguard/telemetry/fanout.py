"""Send every measurement to several recorders, and build the recorder ``instrument()`` uses.

::

    from cioguard.telemetry import build_recorder, set_recorder

    set_recorder(build_recorder(registry=my_registry, meter_provider=my_meter_provider, metrics=None))

``metrics`` (the ``instrument()`` option) picks the backends; whatever it is, one Prometheus scrape
never carries a ``customerio_*`` family twice:

- ``"prometheus"``: prometheus_client metrics only (``registry`` or prometheus_client's ``REGISTRY``);
- ``"otel"``: OpenTelemetry instruments only (``meter_provider``, the global one, or the API's
  proxy, which starts recording once a provider is set);
- ``"both"``: both, unless the MeterProvider exports through OpenTelemetry's Prometheus exporter
  into the same registry: then the OTel copy already is the Prometheus one, and only OTel is used
  (logged once);
- ``None`` (default): Prometheus, plus OpenTelemetry when a MeterProvider is given or set globally
  (``opentelemetry-instrument``) and does not export into the same Prometheus registry;
- ``"none"``: nothing is recorded.

A global MeterProvider set *after* ``instrument()`` (apps that configure OpenTelemetry late) is
picked up by :class:`LateOTelRecorder` at the first measurement after it appears, with the same
rule; for ``"both"``, when it exports into the same registry, the Prometheus copy already scraped
stays the only one (logged once).

A failing recorder never stops the others and never raises into the caller.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import _internal as otel_metrics_internal
from prometheus_client import REGISTRY, CollectorRegistry

from cioguard.telemetry.otel_metrics import OTelMetricsRecorder, set_http_recorders
from cioguard.telemetry.prometheus import PrometheusRecorder
from cioguard.telemetry.recorder import NullRecorder, Recorder
from cioguard.telemetry.safe import never_raise

logger = logging.getLogger("cioguard.telemetry")


class FanoutRecorder:
    """A recorder that forwards each measurement to every recorder in ``recorders``, in order."""

    recorders: tuple[Recorder, ...]

    def __init__(self, recorders: Iterable[Recorder]) -> None:
        self.recorders = tuple(recorders)

    # Each method is wrapped by @never_raise and every recorder is too, so one failure costs only
    # its own measurement.
    @never_raise
    def call(self, method: str, mode: str, seconds: float) -> None:
        for r in self.recorders:
            r.call(method, mode, seconds)

    @never_raise
    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        for r in self.recorders:
            r.calls(method, mode, durations)

    @never_raise
    def enqueued(self, method: str, count: int = 1) -> None:
        for r in self.recorders:
            r.enqueued(method, count)

    @never_raise
    def delivered(self, method: str, count: int = 1) -> None:
        for r in self.recorders:
            r.delivered(method, count)

    @never_raise
    def dropped(self, reason: str, count: int = 1) -> None:
        for r in self.recorders:
            r.dropped(reason, count)

    @never_raise
    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        for r in self.recorders:
            r.request(endpoint, status_code, seconds, error_type)

    @never_raise
    def rate_limited(self, endpoint: str) -> None:
        for r in self.recorders:
            r.rate_limited(endpoint)

    @never_raise
    def retry(self, endpoint: str, reason: str) -> None:
        for r in self.recorders:
            r.retry(endpoint, reason)

    @never_raise
    def queue_size(self, size: int) -> None:
        for r in self.recorders:
            r.queue_size(size)

    @never_raise
    def queue_capacity(self, capacity: int) -> None:
        for r in self.recorders:
            r.queue_capacity(capacity)

    @never_raise
    def delivery_lag(self, seconds: float) -> None:
        for r in self.recorders:
            r.delivery_lag(seconds)

    @never_raise
    def delivery_lags(self, seconds: Sequence[float]) -> None:
        for r in self.recorders:
            r.delivery_lags(seconds)

    @never_raise
    def batch_operations(self, count: int) -> None:
        for r in self.recorders:
            r.batch_operations(count)

    @never_raise
    def pitfall(self, code: str, count: int = 1) -> None:
        for r in self.recorders:
            r.pitfall(code, count)

    @never_raise
    def spool_operations(self, count: int) -> None:
        for r in self.recorders:
            r.spool_operations(count)

    @never_raise
    def http_request_blocked(self, seconds: float) -> None:
        for r in self.recorders:
            r.http_request_blocked(seconds)

    @never_raise
    def http_requests_blocked(self, seconds: Sequence[float]) -> None:
        for r in self.recorders:
            r.http_requests_blocked(seconds)

    @never_raise
    def webhook_event(self, metric: str) -> None:
        for r in self.recorders:
            r.webhook_event(metric)

    @never_raise
    def webhook_rejected(self, reason: str) -> None:
        for r in self.recorders:
            r.webhook_rejected(reason)

    @never_raise
    def endpoint_outage(self, endpoint: str, active: bool) -> None:
        for r in self.recorders:
            r.endpoint_outage(endpoint, active)

    @never_raise
    def fallback(self, method: str) -> None:
        for r in self.recorders:
            r.fallback(method)

    @never_raise
    def spool_error(self, kind: str) -> None:
        for r in self.recorders:
            r.spool_error(kind)


class LateOTelRecorder(FanoutRecorder):
    """OpenTelemetry instruments on the global MeterProvider once one is set (none at ``instrument()``).

    Until then a measurement costs one look at the global provider and is not recorded (the OTel
    API's proxy would drop it too). Then, once: instruments on that provider, unless it exports
    through OpenTelemetry's Prometheus exporter into ``registry`` (cioguard's Prometheus families
    are there already: one scrape never carries a family twice).
    """

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self._registry = registry
        self._chosen: tuple[Recorder, ...] | None = None

    @property
    def recorders(self) -> tuple[Recorder, ...]:  # type: ignore[override]
        chosen = self._chosen
        if chosen is not None:
            return chosen
        # The OTel API keeps the global provider here: None until set_meter_provider() (one
        # attribute read per measurement until then; global_meter_provider() is 10x dearer).
        if getattr(otel_metrics_internal, "_METER_PROVIDER", True) is None:
            return ()
        provider = global_meter_provider()
        if provider is None:
            return ()
        self._chosen = chosen = self._choose(provider)
        return chosen

    def _choose(self, provider: otel_metrics.MeterProvider) -> tuple[Recorder, ...]:
        if prometheus_reader_on(provider, self._registry):
            logger.warning(
                "cioguard: the MeterProvider set after instrument() exports to the same Prometheus "
                "registry through OpenTelemetry's Prometheus exporter; customerio_* metrics stay on "
                "prometheus_client only, so no family is exported twice (set it before instrument(), "
                "or pass metrics='otel', to have them from OpenTelemetry)"
            )
            return ()
        try:
            otel = _otel_recorder(provider)
        except Exception:
            logger.exception("cioguard: OpenTelemetry metrics disabled (could not create instruments)")
            return ()
        set_http_recorders([otel])
        return (otel,)


_otel_cache: weakref.WeakKeyDictionary[Any, OTelMetricsRecorder] = weakref.WeakKeyDictionary()


def _otel_recorder(meter_provider: otel_metrics.MeterProvider) -> OTelMetricsRecorder:
    # One recorder per provider: creating the instruments twice would make the SDK log conflicts.
    try:
        recorder = _otel_cache.get(meter_provider)
        if recorder is None:
            recorder = _otel_cache[meter_provider] = OTelMetricsRecorder(meter_provider)
        return recorder
    except TypeError:  # not weak-referenceable / hashable: no caching
        return OTelMetricsRecorder(meter_provider)


def global_meter_provider() -> otel_metrics.MeterProvider | None:
    """The globally set MeterProvider, or ``None`` while only the no-op/proxy default exists."""
    provider = otel_metrics.get_meter_provider()
    if type(provider).__name__ in {"_ProxyMeterProvider", "NoOpMeterProvider"}:
        return None
    return provider


def prometheus_reader_on(provider: Any, registry: CollectorRegistry | None) -> bool:
    """True when ``provider`` has an OTel ``PrometheusMetricReader`` writing into ``registry``."""
    target = REGISTRY if registry is None else registry
    readers = getattr(provider, "_metric_readers", None)
    if readers is None:  # opentelemetry-sdk < 1.27 keeps them in its config
        readers = getattr(getattr(provider, "_sdk_config", None), "metric_readers", ())
    return any(
        type(reader).__module__.startswith("opentelemetry.exporter.prometheus")
        and getattr(reader, "_registry", REGISTRY) is target
        for reader in readers or ()
    )


def choose_backends(
    metrics: str | None, registry: CollectorRegistry | None, provider: Any
) -> tuple[bool, bool]:
    """``(prometheus, otel)``: which backends the ``metrics`` option means here (see the docstring)."""
    if metrics == "none":
        return False, False
    if metrics == "prometheus":
        return True, False
    if metrics == "otel":
        return False, True
    doubled = provider is not None and prometheus_reader_on(provider, registry)
    if metrics == "both":
        if doubled:
            logger.warning(
                "cioguard: metrics='both', but the MeterProvider exports to the same Prometheus registry "
                "through OpenTelemetry's Prometheus exporter; customerio_* metrics come from "
                "OpenTelemetry only, so no family is exported twice"
            )
            return False, True
        return True, True
    return True, provider is not None and not doubled


def build_recorder(
    registry: CollectorRegistry | None = None,
    meter_provider: otel_metrics.MeterProvider | None = None,
    metrics: str | None = None,
) -> Recorder:
    """The recorder for ``cioguard.instrument(registry=..., meter_provider=..., metrics=...)``.

    Raises ``ValueError`` only when ``registry`` already holds a foreign metric under one of
    cioguard's names. Any other failure (e.g. an unusable ``PROMETHEUS_MULTIPROC_DIR``) is logged
    and that backend is left out.
    """
    provider = meter_provider if meter_provider is not None else global_meter_provider()
    use_prometheus, use_otel = choose_backends(metrics, registry, provider)
    late = provider is None and metrics in (None, "both")  # a global provider may come later
    if use_otel and provider is None and not late:  # explicit "otel": the proxy records once one is set
        provider = otel_metrics.get_meter_provider()
    recorders: list[Recorder] = []
    if use_prometheus:
        try:
            recorders.append(PrometheusRecorder(registry))
        except ValueError:
            raise
        except Exception:
            logger.exception("cioguard: Prometheus metrics disabled (could not register them)")
    otel: list[OTelMetricsRecorder] = []
    if use_otel and provider is not None:
        try:
            otel.append(_otel_recorder(provider))
        except Exception:
            logger.exception("cioguard: OpenTelemetry metrics disabled (could not create instruments)")
    recorders += otel
    set_http_recorders(otel)  # http.client.request.duration goes where OTel metrics go
    if late and use_prometheus:
        recorders.append(LateOTelRecorder(registry))
    if not recorders:
        return NullRecorder()
    if len(recorders) == 1:
        return recorders[0]
    return FanoutRecorder(recorders)
