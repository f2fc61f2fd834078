"""The CLIENT span around a call that runs through the SDK (blocking mode, ``synchronous()``, App API).

Queued calls get no span here: they capture a :class:`~cioguard.instrumentation.tracing.CallerTrace`
and the sender makes their PRODUCER span (see :mod:`cioguard.instrumentation.tracing`).

Attributes are passed at start (one call instead of a locked ``set_attribute`` each). The event name
is left off when a rule found it dynamic or carrying personal data (CIO006/CIO012), and the customer
id is recorded only with ``capture_customer_id=True``. Pitfall findings become span events.

A failed call's exception is recorded by :func:`record_failure`, never with the SDK's own text: the
SDK formats HTTP failures as ``"<status>: <url> <payload> <body>"``, which holds the customer id in
the URL and the request and response bodies (emails, attributes). The event carries the exception
type, a safe message (the HTTP status, or the type name) and a stack trace without that text.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cioguard.delivery.spans import http_attributes, url_template
from cioguard.instrumentation.tracing import caller_attributes, instrumentation_suppressed
from cioguard.operations.model import Call, Endpoint
from cioguard.pitfalls import Finding
from cioguard.telemetry.otel_metrics import record_http_client_duration

_METRIC_KEYS = ("http.request.method", "server.address", "server.port", "url.scheme", "url.template")


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
    codes = tuple(finding.code for finding in findings)
    attributes = caller_attributes(
        method,
        endpoint,
        "blocking",
        None if call is None else call.name,
        None if call is None else call.customer_id,
        codes,
        capture_customer_id,
    )
    with tracer.start_as_current_span(
        f"customerio {method}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        for code in codes:
            span.add_event("customerio.pitfall", {"customerio.pitfall.code": code})
        yield span


def annotate_sdk_request(http_method: str, url: str, status: int | None, seconds: float) -> None:
    """One HTTP exchange of the SDK itself (blocking path): semconv attributes on the current CLIENT
    span and a ``http.client.request.duration`` measurement. ``url`` is recorded only as a template."""
    attributes = http_attributes(http_method, url, url_template(urlsplit(url).path))
    metric = {key: attributes[key] for key in _METRIC_KEYS if key in attributes}
    if status is not None:
        attributes["http.response.status_code"] = metric["http.response.status_code"] = status
    if status is None or status >= 400:
        attributes["error.type"] = metric["error.type"] = "_OTHER" if status is None else str(status)
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
        if status is not None and status >= 400:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
    record_http_client_duration(seconds, metric)


def record_failure(span: Any, exc: BaseException, capture_customer_id: bool = False) -> None:
    """Record ``exc`` on ``span`` as an exception event and ERROR status, without personal data.

    With ``capture_customer_id=True`` the SDK's own message is kept (the user opted in to ids).
    """
    if span is None or not span.is_recording():
        return
    kind = type(exc)
    type_name = f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else kind.__name__
    message = str(exc) if capture_customer_id else safe_message(exc)
    frames = "".join(traceback.format_tb(exc.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": type_name,
            "exception.message": message,
            "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{type_name}: {message}\n",
            "exception.escaped": True,
        },
    )
    span.set_attribute("error.type", _error_type(exc, type_name))
    span.set_status(Status(StatusCode.ERROR, message))


def safe_message(exc: BaseException) -> str:
    """A message for ``exc`` that holds no id, email, payload or URL: the HTTP status when known."""
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status} from Customer.io (response text withheld: it may hold personal data)"
    return f"{type(exc).__name__} (message withheld: it may hold personal data)"


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an SDK ``CustomerIOException`` (``"<status>: <url> …"``), else ``None``."""
    head = str(exc).split(":", 1)[0].strip()
    return int(head) if head.isdigit() and len(head) == 3 else None


def _error_type(exc: BaseException, type_name: str) -> str:
    status = http_status(exc)
    return str(status) if status is not None else type_name
