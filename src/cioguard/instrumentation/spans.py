"""Caller spans: one per patched SDK call (PRODUCER when queued, CLIENT when it runs through).

Attributes are passed at start (one call instead of a locked ``set_attribute`` each). The event name
is left off when a rule found it dynamic or carrying personal data (CIO006/CIO012), and the customer
id is recorded only with ``capture_customer_id=True``. Pitfall findings become span events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from cioguard.instrumentation.tracing import instrumentation_suppressed
from cioguard.operations.model import Call, Endpoint
from cioguard.pitfalls import Finding

_EVENT_METHODS = frozenset({"track", "track_anonymous", "pageview", "backfill"})


def call_attributes(
    method: str,
    call: Call | None,
    endpoint: Endpoint,
    mode: str,
    findings: list[Finding],
    capture_customer_id: bool,
) -> dict[str, Any]:
    """The ``customerio.*`` attributes of a caller span."""
    attributes: dict[str, Any] = {
        "messaging.system": "customerio",
        "customerio.method": method,
        "customerio.mode": mode,
        "customerio.api": endpoint.api,
        "customerio.endpoint": endpoint.label,
    }
    if call is None:
        return attributes
    codes = {finding.code for finding in findings}
    # An event name that a rule found dynamic or carrying PII may hold ids: keep it off spans.
    if method in _EVENT_METHODS and isinstance(call.name, str) and not codes & {"CIO006", "CIO012"}:
        attributes["customerio.event_name"] = call.name
    if capture_customer_id and call.customer_id not in (None, ""):
        attributes["customerio.customer_id"] = str(call.customer_id)
    return attributes


def producer_span(
    tracer: trace.Tracer,
    method: str,
    call: Call,
    endpoint: Endpoint,
    findings: list[Finding],
    capture_customer_id: bool,
) -> Any:
    """Start and end the PRODUCER span of a queued call; its ``SpanContext`` goes with the operation."""
    attributes = call_attributes(method, call, endpoint, "background", findings, capture_customer_id)
    span = tracer.start_span(f"customerio {method}", kind=SpanKind.PRODUCER, attributes=attributes)
    for finding in findings:
        span.add_event("customerio.pitfall", {"customerio.pitfall.code": finding.code})
    context = span.get_span_context()
    span.end()
    return context


@contextmanager
def client_span(
    tracer: trace.Tracer | None,
    method: str,
    call: Call | None,
    endpoint: Endpoint,
    findings: list[Finding],
    capture_customer_id: bool,
) -> Iterator[Any]:
    """The current CLIENT span around a call that runs through the SDK (``None`` when not traced)."""
    if tracer is None or instrumentation_suppressed():
        yield None
        return
    attributes = call_attributes(method, call, endpoint, "blocking", findings, capture_customer_id)
    with tracer.start_as_current_span(
        f"customerio {method}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        for finding in findings:
            span.add_event("customerio.pitfall", {"customerio.pitfall.code": finding.code})
        yield span
