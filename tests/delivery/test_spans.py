"""Send spans: CLIENT kind, attributes, links to the callers' spans, suppression of HTTP spans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled, is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.delivery.spans import MAX_LINKS
from cioguard.delivery.transport import RequestsTransport, TransportResponse
from cioguard.operations.model import Endpoint, Operation


@pytest.fixture
def exporter() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    yield provider.get_tracer("test"), exp
    provider.shutdown()


def with_context(op: Operation, ctx: object) -> Operation:
    op.span_context = ctx
    return op


class SpyTransport(RequestsTransport):
    """The real transport, noting whether instrumentation was suppressed during each send."""

    suppressed: list[bool]

    def send(self, *args, **kwargs) -> TransportResponse:  # type: ignore[no-untyped-def]
        self.suppressed.append(not is_http_instrumentation_enabled() and not is_instrumentation_enabled())
        return super().send(*args, **kwargs)


def test_send_span_links_and_attributes(
    sink: Sink, endpoint: Endpoint, exporter: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exp = exporter
    sink.script(Reply(503))
    with tracer.start_as_current_span("caller") as caller:
        caller_ctx = caller.get_span_context()
    transport = SpyTransport()
    transport.suppressed = []
    engine = DeliveryEngine(
        DeliveryConfig(lanes=1, flush_interval=60.0, retry_base=0.0), tracer=tracer, transport=transport
    )
    try:
        ops = [with_context(make_op(endpoint, person=f"p{i}"), caller_ctx) for i in range(MAX_LINKS + 5)]
        ops.append(with_context(make_op(endpoint), trace.INVALID_SPAN_CONTEXT))
        ops.append(with_context(make_op(endpoint), None))
        for op in ops:
            engine.submit(op)
        assert engine.flush(5.0)
    finally:
        engine.shutdown(1.0)
    spans = [s for s in exp.get_finished_spans() if s.name != "caller"]
    assert len(spans) == 2  # one 503, one retry
    first, second = spans
    assert first.name == "POST /api/v2/batch"
    assert first.kind == trace.SpanKind.CLIENT
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert "http.request.resend_count" not in first.attributes  # the first attempt is no resend
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["messaging.batch.message_count"] == len(ops)
    assert second.attributes["messaging.system"] == "customerio"
    assert second.attributes["messaging.operation.type"] == "send"
    assert second.attributes["url.full"] == sink.url + "/api/v2/batch"
    assert second.attributes["url.template"] == "/api/v2/batch"
    assert second.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["server.port"] == int(sink.url.rsplit(":", 1)[1])
    assert second.attributes["http.request.method"] == "POST"
    assert len(second.links) == MAX_LINKS
    assert all(link.context.trace_id == caller_ctx.trace_id for link in second.links)
    assert second.parent is None
    assert transport.suppressed == [True, True]
    assert "Basic" not in str(second.attributes)


def test_single_span_name_has_no_customer_id(
    sink: Sink, endpoint: Endpoint, exporter: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    tracer, exp = exporter
    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.0), tracer=tracer)
    try:
        engine.submit(make_op(endpoint, person="alice@example.com", route="single"))
        assert engine.flush(5.0)
    finally:
        engine.shutdown(1.0)
    (span,) = exp.get_finished_spans()
    assert span.name == "POST /api/v1/customers/{customer_id}/events"
    assert span.attributes is not None
    assert "messaging.batch.message_count" not in span.attributes  # a single-message request


def test_v1_url_is_recorded_without_the_customer_id() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from cioguard.delivery.spans import SpanFactory

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    factory = SpanFactory(provider.get_tracer("t"))
    path = "/api/v1/customers/ada%40example.com/events"
    factory.end(factory.start("POST", "https://track.example" + path, path, [], 0), 200, None)
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /api/v1/customers/{customer_id}/events"
    assert span.attributes is not None
    assert span.attributes["url.template"] == "/api/v1/customers/{customer_id}/events"
    assert span.attributes["url.full"] == "https://track.example/api/v1/customers/REDACTED/events"
    assert span.attributes["server.address"] == "track.example"
    assert span.attributes["server.port"] == 443


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v2/batch", "/api/v2/batch"),
        ("/api/v2/entity", "/api/v2/entity"),
        ("/api/v1/customers/42", "/api/v1/customers/{customer_id}"),
        ("/api/v1/customers/a%40b.c/devices/tok-9", "/api/v1/customers/{customer_id}/devices/{device_id}"),
        ("/api/v1/customers/42/suppress", "/api/v1/customers/{customer_id}/suppress"),
        ("/api/v1/merge_customers", "/api/v1/merge_customers"),
        ("/v1/send/email", "/v1/send/email"),
        ("/some/ada@example.com/unknown", "/{path}"),
    ],
)
def test_url_template_never_holds_an_id(path: str, template: str) -> None:
    from cioguard.delivery.spans import url_template

    assert url_template(path) == template


def test_a_raising_span_processor_costs_the_link_not_the_send(sink: Sink, endpoint: Endpoint) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry.sdk.trace import SpanProcessor

    from cioguard.delivery.spans import caller_links
    from cioguard.instrumentation.tracing import CallerTrace, get_tracer

    class Raising(SpanProcessor):
        def on_start(self, span: object, parent_context: object = None) -> None:
            raise RuntimeError("processor bug")

    provider = TracerProvider()
    provider.add_span_processor(Raising())
    op = make_op(endpoint)
    op.span_context = CallerTrace(
        get_tracer(provider), otel_context.get_current(), 1, "track", endpoint, "x", None, True, False
    )
    assert caller_links([op]) == []
    assert op.span_context == trace.INVALID_SPAN_CONTEXT  # made once: retries do not try again
    provider.shutdown()


def test_a_resend_after_a_429_carries_its_resend_count(
    sink: Sink, endpoint: Endpoint, exporter: tuple[trace.Tracer, InMemorySpanExporter]
) -> None:
    # OpenTelemetry counts a resend "for any reason": a 429 (never an attempt for max_retries) too.
    tracer, exp = exporter
    sink.script(Reply(429, headers={"Retry-After": "0"}))
    engine = DeliveryEngine(DeliveryConfig(), tracer=tracer)  # defaults: one batch, its resend
    try:
        engine.submit(make_op(endpoint))
        assert engine.flush(5.0)
    finally:
        engine.shutdown(1.0)
    first, second = exp.get_finished_spans()
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 429
    assert "http.request.resend_count" not in first.attributes
    assert second.attributes["http.request.resend_count"] == 1
