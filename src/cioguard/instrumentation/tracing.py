"""Caller-side tracing: what a patched SDK call captures so its span costs the caller almost nothing.

With no tracer provider configured (OpenTelemetry's default proxy provider, or the no-op one) the
hot path asks :meth:`CallerTracing.tracer` and gets ``None``: nothing is captured at all. When a
provider is set later (``trace.set_tracer_provider``), the next call notices it by identity.

With a recording provider, a queued call does not build a span on the caller's thread (the OTel
SDK's span start/end costs 20+ µs here). :meth:`CallerTracing.capture` takes the current context
object and ``time.time_ns()`` (about half a microsecond together) into a :class:`CallerTrace`
that travels with the operation; the sender builds and ends the PRODUCER ("create") span from it,
with the caller's parent and start time, when the send span that carries it starts
(:mod:`cioguard.delivery.spans`). ``producer_spans=False`` keeps the capture but makes no
PRODUCER span: the send span then links to the caller's own span instead.

Usage (the runtime does this)::

    tracing = CallerTracing(tracer_provider, capture_customer_id=False)
    captured = tracing.capture("track", endpoint, name="signed_up", customer_id="u1")
    operation.span_context = captured       # the sender calls captured.span_context() once
"""

from __future__ import annotations

import functools
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanContext, SpanKind

from cioguard.operations.model import Endpoint
from cioguard.shapes import find_pii, id_like_tokens
from cioguard.version import __version__

_MISSING = object()
_NO_RECORDING_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
INSTRUMENTATION_NAME = "cioguard"
#: The semantic-conventions version the span and metric attributes follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
#: Rules whose finding means the event name may carry ids or personal data: keep it off spans.
_UNSAFE_NAME_CODES = frozenset({"CIO006", "CIO012"})
_EVENT_METHODS = frozenset({"track", "track_anonymous", "pageview", "backfill"})


def get_tracer(provider: Any) -> trace.Tracer:
    """cioguard's tracer from ``provider`` (with the version and ``schema_url``)."""
    return provider.get_tracer(INSTRUMENTATION_NAME, __version__, schema_url=SCHEMA_URL)  # type: ignore[no-any-return]


def caller_attributes(
    method: str,
    endpoint: Endpoint,
    mode: str,
    name: Any,
    customer_id: Any,
    codes: tuple[str, ...],
    capture_customer_id: bool,
) -> dict[str, Any]:
    """The attributes of a caller span (PRODUCER ``create`` span, or the CLIENT span of a blocking call)."""
    attributes: dict[str, Any] = {
        "messaging.system": "customerio",
        "messaging.operation.type": "create" if mode == "background" else "send",
        "messaging.operation.name": method,
        "messaging.destination.name": endpoint.api,
        "customerio.method": method,
        "customerio.mode": mode,
        "customerio.api": endpoint.api,
        "customerio.endpoint": endpoint.label,
    }
    if (
        method in _EVENT_METHODS
        and isinstance(name, str)
        and not _UNSAFE_NAME_CODES.intersection(codes)
        and _name_is_safe(name)
    ):
        attributes["customerio.event_name"] = name
    if capture_customer_id and customer_id not in (None, ""):
        attributes["customerio.customer_id"] = str(customer_id)
    return attributes


@functools.lru_cache(maxsize=1024)
def _name_is_safe(name: str) -> bool:
    """An event name without personal data or ids (checked here too: the rules may be off)."""
    return len(name) <= 100 and not find_pii(name) and not id_like_tokens(name)


class CallerTrace:
    """A queued call's trace capture; :meth:`span_context` makes its PRODUCER span (once).

    It also answers like a ``SpanContext`` (``is_valid``, ``trace_id``, ``span_id``,
    ``trace_flags``), so code that forwards the caller's span context (the Redis producer's
    ``traceparent``) works with it unchanged. Holds ids only when ``capture_customer_id`` is on.
    """

    __slots__ = (
        "_context",
        "_parent",
        "_tracer",
        "caller_seconds",
        "capture_customer_id",
        "codes",
        "customer_id",
        "endpoint",
        "method",
        "name",
        "produce",
        "start_ns",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        parent: otel_context.Context,
        start_ns: int,
        method: str,
        endpoint: Endpoint,
        name: Any,
        customer_id: Any,
        produce: bool,
        capture_customer_id: bool,
    ) -> None:
        self._tracer = tracer
        self._parent = parent
        self._context: SpanContext | None = None
        self.start_ns = start_ns
        self.method = method
        self.endpoint = endpoint
        self.name = name
        # Invariant: an id is held only when it may be recorded (nothing personal otherwise).
        self.customer_id = customer_id if capture_customer_id else None
        self.capture_customer_id = capture_customer_id
        self.produce = produce
        #: Pitfall codes found for this call (span events); set by whoever runs the rules.
        self.codes: tuple[str, ...] = ()
        #: Caller time, for the PRODUCER span's end (0: the span ends where it starts).
        self.caller_seconds = 0.0

    def span_context(self) -> SpanContext:
        """The context send spans link to: the PRODUCER span's, made and ended on first use."""
        context = self._context
        if context is None:
            try:
                context = self._make()
            except Exception:  # a broken span processor must not reach the sender: no span, no link
                context = trace.INVALID_SPAN_CONTEXT
            self._context = context
        return context

    def _make(self) -> SpanContext:
        if not self.produce:  # producer_spans=False: link to the caller's own span
            return trace.get_current_span(self._parent).get_span_context()
        attributes = caller_attributes(
            self.method,
            self.endpoint,
            "background",
            self.name,
            self.customer_id,
            self.codes,
            self.capture_customer_id,
        )
        span = self._tracer.start_span(
            f"customerio {self.method}",
            context=self._parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes,
            start_time=self.start_ns,
        )
        for code in self.codes:
            span.add_event("customerio.pitfall", {"customerio.pitfall.code": code}, self.start_ns)
        span.end(self.start_ns + int(self.caller_seconds * 1e9))
        return span.get_span_context()

    # -- SpanContext look-alike (the Redis producer's traceparent) ------------------------------------

    @property
    def is_valid(self) -> bool:
        return self.span_context().is_valid

    @property
    def trace_id(self) -> int:
        return self.span_context().trace_id

    @property
    def span_id(self) -> int:
        return self.span_context().span_id

    @property
    def trace_flags(self) -> trace.TraceFlags:
        return self.span_context().trace_flags


class CallerTracing:
    """Resolves (and caches) the tracer for caller spans; captures queued calls' traces."""

    def __init__(
        self, tracer_provider: Any = None, *, producer_spans: bool = True, capture_customer_id: bool = False
    ) -> None:
        self._explicit = tracer_provider
        self._provider: Any = object()
        self._tracer: trace.Tracer | None = None
        self.producer_spans = producer_spans
        self.capture_customer_id = capture_customer_id

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
                self._tracer = get_tracer(provider)
                if self._explicit is None:  # a global provider set after instrument()
                    from cioguard.exits import flush_before_later_hooks  # (exits imports us lazily too)

                    flush_before_later_hooks()
        return self._tracer

    def capture(
        self, method: str, endpoint: Endpoint, name: Any = None, customer_id: Any = None
    ) -> CallerTrace | None:
        """The caller's trace capture for a queued call, or ``None`` when nothing records spans.

        Caller cost: the context object, ``time_ns`` and one small object; no span is built here.
        """
        tracer = self.tracer()
        if tracer is None or not is_instrumentation_enabled():
            return None
        return CallerTrace(
            tracer,
            otel_context.get_current(),
            time.time_ns(),
            method,
            endpoint,
            name,
            customer_id,
            self.producer_spans,
            self.capture_customer_id,
        )

    def send_tracer(self) -> trace.Tracer:
        """The tracer for the sender's HTTP spans (a proxy that starts recording once a provider is set)."""
        if self._explicit is not None:
            return get_tracer(self._explicit)
        return trace.get_tracer(INSTRUMENTATION_NAME, __version__, schema_url=SCHEMA_URL)


def instrumentation_suppressed() -> bool:
    """True inside OpenTelemetry's ``suppress_instrumentation()``."""
    return not is_instrumentation_enabled()
