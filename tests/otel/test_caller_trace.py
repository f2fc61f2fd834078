"""``CallerTrace``: the cheap capture a queued call carries, and the PRODUCER span made from it later."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind

from cioguard.instrumentation.tracing import CallerTracing
from cioguard.operations.model import Endpoint
from cioguard.scaleout.codec import _traceparent

ENDPOINT = Endpoint(
    api="track", base_url="https://track.example", auth_header="Basic c2VjcmV0", label="track"
)


def provider_and_exporter() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_the_span_is_made_once_on_first_use_and_answers_like_a_span_context() -> None:
    provider, exporter = provider_and_exporter()
    tracing = CallerTracing(provider)
    with provider.get_tracer("app").start_as_current_span("request") as request:
        captured = tracing.capture("track", ENDPOINT, "signed_up", "u1")
    assert captured is not None
    assert [span.name for span in exporter.get_finished_spans()] == ["request"]  # nothing built at the call
    captured.caller_seconds = 2e-6
    context = captured.span_context()
    assert captured.span_context() is context
    (span,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.PRODUCER]
    assert span.context is not None
    assert (span.context.trace_id, span.context.span_id) == (context.trace_id, context.span_id)
    assert span.parent is not None
    assert span.parent.span_id == request.get_span_context().span_id
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time - span.start_time == 2000
    assert "customerio.customer_id" not in (span.attributes or {})
    assert captured.customer_id is None  # not even held without capture_customer_id
    # The Redis producer forwards it as a W3C traceparent without knowing the type.
    assert captured.is_valid
    assert (
        _traceparent(captured)
        == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    )
    provider.shutdown()


def test_nothing_is_captured_without_a_recording_provider() -> None:
    assert CallerTracing(NoOpTracerProvider()).capture("track", ENDPOINT) is None


def test_producer_spans_off_captures_the_callers_span_for_the_link() -> None:
    provider, exporter = provider_and_exporter()
    tracing = CallerTracing(provider, producer_spans=False)
    with provider.get_tracer("app").start_as_current_span("request") as request:
        captured = tracing.capture("identify", ENDPOINT)
    assert captured is not None
    assert captured.span_context() == request.get_span_context()
    assert [span.name for span in exporter.get_finished_spans()] == ["request"]
    provider.shutdown()
