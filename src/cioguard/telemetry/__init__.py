"""Telemetry: where cioguard's measurements go (Prometheus, OpenTelemetry metrics).

Everything in cioguard reports through one :class:`Recorder`; ``cioguard.instrument()`` installs
``build_recorder(registry=..., meter_provider=..., metrics=...)`` with :func:`set_recorder`. The
``metrics`` option (``prometheus`` | ``otel`` | ``both`` | ``none`` | unset) picks the backends so
that one scrape never carries a family twice (see :mod:`cioguard.telemetry.fanout`). Serve the
Prometheus metrics with :mod:`cioguard.metrics` (``make_asgi_app`` / ``make_wsgi_app``).
"""

from cioguard.telemetry.fanout import FanoutRecorder, build_recorder
from cioguard.telemetry.otel_metrics import OTelMetricsRecorder
from cioguard.telemetry.prometheus import PrometheusRecorder
from cioguard.telemetry.recorder import NullRecorder, Recorder, get_recorder, set_recorder

__all__ = [
    "FanoutRecorder",
    "NullRecorder",
    "OTelMetricsRecorder",
    "PrometheusRecorder",
    "Recorder",
    "build_recorder",
    "get_recorder",
    "set_recorder",
]
