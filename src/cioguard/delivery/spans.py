"""CLIENT spans for the sender's HTTP requests, linked to the callers' spans.

Only built when a tracer was given: with ``tracer=None`` the sender does no span work at all.
Each span links (``trace.Link``) to the span context captured when each carried operation was
accepted, skipping invalid ones and capping links at :data:`MAX_LINKS`. ``url.full`` never
contains credentials (they travel in the ``Authorization`` header, which is not recorded) nor customer
ids (v1 paths are recorded as templates: ``/api/v1/customers/{id}/events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace

from cioguard.operations.model import Operation

MAX_LINKS = 128


class SpanFactory:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(self, method: str, url: str, path: str, ops: Sequence[Operation], attempt: int) -> trace.Span:
        links: list[trace.Link] = []
        for op in ops:
            ctx = op.span_context
            if isinstance(ctx, trace.SpanContext) and ctx.is_valid:
                links.append(trace.Link(ctx))
                if len(links) >= MAX_LINKS:
                    break
        template = path if path.startswith("/api/v2") else _template(path)
        # v1 paths carry the customer id (personal data): record the templated URL instead.
        full = url[: len(url) - len(path)] + template if template != path and url.endswith(path) else url
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.full": full,
            "customerio.operations": len(ops),
            "customerio.retry_count": attempt,
        }
        # A fresh root: the sender thread has no caller context; callers are reached by links.
        return self._tracer.start_span(
            f"customerio {method} {template}",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            kind=trace.SpanKind.CLIENT,
            links=links,
            attributes=attributes,
        )

    def end(self, span: trace.Span, status: int | None, error: str | None) -> None:
        try:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 400:
                    span.set_attribute("error.type", str(status))
                    span.set_status(trace.StatusCode.ERROR)
            else:
                span.set_attribute("error.type", error or "connection")
                span.set_status(trace.StatusCode.ERROR)
        finally:
            span.end()


def _template(path: str) -> str:
    """Span names must be low-cardinality: replace the customer id segment with ``{id}``."""
    parts = path.split("/")
    if len(parts) > 4 and parts[1:4] == ["api", "v1", "customers"]:
        parts[4] = "{id}"
        if len(parts) > 6 and parts[5] == "devices":
            parts[6] = "{device_id}"
    return "/".join(parts)
