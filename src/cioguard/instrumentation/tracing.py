"""Caller-side spans: one span per patched SDK call, built only when someone records them.

With no tracer provider configured (OpenTelemetry's default proxy provider, or the no-op one) the
hot path asks :meth:`CallerTracing.tracer` and gets ``None``: no span object is built at all. When
a provider is set later (``trace.set_tracer_provider``), the next call notices it by identity.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from cioguard.version import __version__

_MISSING = object()
_NO_RECORDING_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
INSTRUMENTATION_NAME = "cioguard"


class CallerTracing:
    """Resolves (and caches) the tracer for caller spans."""

    def __init__(self, tracer_provider: Any = None) -> None:
        self._explicit = tracer_provider
        self._provider: Any = object()
        self._tracer: trace.Tracer | None = None

    def tracer(self) -> trace.Tracer | None:
        """The tracer to use now, or ``None`` when spans would not be recorded anywhere."""
        # ``trace.get_tracer_provider()`` reads os.environ on every call (~1.2 us here); the module
        # global it returns is what we need, so read that directly and fall back to the API.
        provider = self._explicit
        if provider is None:
            provider = getattr(trace, "_TRACER_PROVIDER", _MISSING)
            if provider is _MISSING:
                provider = trace.get_tracer_provider()
            elif provider is None:  # no global provider set yet: the API's proxy records nothing
                return None
        if provider is not self._provider:
            self._provider = provider
            if isinstance(provider, _NO_RECORDING_PROVIDERS):
                self._tracer = None
            else:
                self._tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
        return self._tracer

    def send_tracer(self) -> trace.Tracer:
        """The tracer for the sender's HTTP spans (a proxy that starts recording once a provider is set)."""
        if self._explicit is not None:
            return self._explicit.get_tracer(INSTRUMENTATION_NAME, __version__)  # type: ignore[no-any-return]
        return trace.get_tracer(INSTRUMENTATION_NAME, __version__)


def instrumentation_suppressed() -> bool:
    """True inside OpenTelemetry's ``suppress_instrumentation()``."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))
