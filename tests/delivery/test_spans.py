"""Send spans: CLIENT kind, attributes, links to the callers' spans, suppression of HTTP spans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
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
        self.suppressed.append(bool(otel_context.get_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY)))
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
    assert first.name == "customerio POST /api/v2/batch"
    assert first.kind == trace.SpanKind.CLIENT
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["customerio.retry_count"] == 0
    assert second.attributes["customerio.retry_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["customerio.operations"] == len(ops)
    assert second.attributes["url.full"] == sink.url + "/api/v2/batch"
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
    assert span.name == "customerio POST /api/v1/customers/{id}/events"


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
    assert span.name == "customerio POST /api/v1/customers/{id}/events"
    assert span.attributes is not None
    assert span.attributes["url.full"] == "https://track.example/api/v1/customers/{id}/events"
