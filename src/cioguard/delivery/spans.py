"""The sender's spans: an HTTP CLIENT span per attempt, and the callers' PRODUCER spans it links to.

Only built when a tracer was given: with ``tracer=None`` the sender does no span work at all.

When an attempt's span starts, every carried operation whose ``span_context`` is a caller's trace
capture (an object with a ``span_context()`` method, see
:class:`cioguard.instrumentation.tracing.CallerTrace`) has its PRODUCER span made and ended now,
with the caller's parent context and start time; its ``SpanContext`` replaces the capture on the
operation, so retries link to the same span. The send span then links (``trace.Link``) to every
valid caller context, capped at :data:`MAX_LINKS`.

Attributes follow the OpenTelemetry semantic conventions (schema 1.37): ``http.request.method``,
``url.template`` (``/api/v1/customers/{customer_id}/events``: never an id), ``url.full`` with ids
replaced by ``REDACTED`` (credentials travel in the ``Authorization`` header and are never
recorded), ``server.address``, ``server.port``, ``http.request.resend_count`` on retries,
``http.response.status_code``, ``error.type``; and for the queue hop ``messaging.system``
``customerio``, ``messaging.operation.type`` ``send`` and ``messaging.batch.message_count`` for
``/api/v2/batch`` requests. The span name is ``{method} {url.template}``. Each attempt's duration is
also recorded in the OpenTelemetry ``http.client.request.duration`` histogram when OTel metrics are on.

:func:`suppressed` is the context the transport runs in: OpenTelemetry's public
``suppress_instrumentation`` + ``suppress_http_instrumentation``, so an HTTP-library
instrumentation (requests, urllib3) makes no second span for the same request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import compress
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation, suppress_instrumentation

from cioguard.delivery.slices import Budget
from cioguard.endpoints import endpoint_name
from cioguard.operations.model import Operation
from cioguard.telemetry.otel_metrics import record_http_client_duration

MAX_LINKS = 128
_span_context = attrgetter("span_context")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SendSpan:
    """One attempt's span and what its end needs (start time, metric attributes)."""

    __slots__ = ("metric_attributes", "span", "started")

    def __init__(self, span: trace.Span, metric_attributes: dict[str, Any]) -> None:
        self.span = span
        self.metric_attributes = metric_attributes
        self.started = time.perf_counter()


class SpanFactory:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(self, method: str, url: str, path: str, ops: Sequence[Operation], attempt: int) -> SendSpan:
        links = caller_links(ops)
        template = url_template(path)
        attributes = http_attributes(method, url, template)
        metric_attributes: dict[str, Any] = {
            key: attributes[key]
            for key in ("http.request.method", "server.address", "server.port", "url.scheme", "url.template")
            if key in attributes
        }
        attributes["messaging.system"] = "customerio"
        attributes["messaging.operation.type"] = "send"
        attributes["messaging.operation.name"] = "send"
        if path == "/api/v2/batch":  # a batch API: message count (not for single-entry requests)
            attributes["messaging.batch.message_count"] = len(ops)
        if attempt:
            attributes["http.request.resend_count"] = attempt
        # A fresh root: the sender thread has no caller context; callers are reached by links.
        span = self._tracer.start_span(
            f"{method} {template}",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            kind=trace.SpanKind.CLIENT,
            links=links,
            attributes=attributes,
        )
        return SendSpan(span, metric_attributes)

    def end(self, send: SendSpan, status: int | None, error: str | None) -> None:
        span = send.span
        attributes = send.metric_attributes
        try:
            if status is not None:
                attributes = {**attributes, "http.response.status_code": status}
                span.set_attribute("http.response.status_code", status)
                if status >= 400:
                    attributes["error.type"] = str(status)
                    span.set_attribute("error.type", str(status))
                    span.set_status(trace.StatusCode.ERROR)
            else:
                attributes = {**attributes, "error.type": error or "connection"}
                span.set_attribute("error.type", error or "connection")
                span.set_status(trace.StatusCode.ERROR)
        finally:
            span.end()
            record_http_client_duration(time.perf_counter() - send.started, attributes)


def caller_links(ops: Sequence[Operation]) -> list[trace.Link]:
    """Links to the callers' spans; makes each pending PRODUCER span first (once per operation)."""
    links: list[trace.Link] = []
    # Only operations that carry a context (C-level filter: most carry none without a recording
    # TracerProvider, and a batch holds up to 2 000 of them).
    budget = Budget()  # an OTel SDK span costs ~20 µs: 2 000 of them are 40 ms of GIL
    for op in compress(ops, map(_span_context, ops)):
        budget.tick()
        ctx = op.span_context
        make = getattr(ctx, "span_context", None)
        if callable(make):
            try:
                ctx = op.span_context = make()
            except Exception:  # a broken span processor must not stop delivery
                ctx = op.span_context = None
        if isinstance(ctx, trace.SpanContext) and ctx.is_valid and len(links) < MAX_LINKS:
            links.append(trace.Link(ctx))
    return links


def http_attributes(method: str, url: str, template: str) -> dict[str, Any]:
    """Semantic-convention HTTP client attributes of a request to ``url`` (ids scrubbed)."""
    parts = urlsplit(url)
    scheme = parts.scheme or "https"
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.template": template,
        "url.scheme": scheme,
        "url.full": f"{scheme}://{parts.netloc.rpartition('@')[2]}{_redacted(template)}",
    }
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def url_template(path: str) -> str:
    """The route template of a Customer.io request path: ids become ``{customer_id}``/``{device_id}``.

    Paths of an unknown shape become ``/{path}``: never a raw path, which may hold personal data.
    """
    path = path.split("?", 1)[0]
    parts = path.split("/")
    if len(parts) > 4 and parts[1:4] == ["api", "v1", "customers"]:
        parts[4] = "{customer_id}"
        if len(parts) > 6 and parts[5] == "devices":
            parts[6] = "{device_id}"
        return "/".join(parts[:7])
    if endpoint_name("POST", path) == "other":
        return "/{path}"
    return path


def _redacted(template: str) -> str:
    return template.replace("{customer_id}", "REDACTED").replace("{device_id}", "REDACTED")


@contextmanager
def suppressed() -> Iterator[None]:
    """Run the HTTP request with OpenTelemetry instrumentation suppressed (public helpers)."""
    with suppress_instrumentation(), suppress_http_instrumentation():
        yield
