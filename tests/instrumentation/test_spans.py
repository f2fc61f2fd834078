"""Caller spans, send spans and the links between them, through the real SDK, with the in-memory exporter."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.instrumentation.tracing import SCHEMA_URL
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


def kind(exporter: InMemorySpanExporter, wanted: SpanKind) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == wanted]


def test_caller_span_is_linked_from_the_send_span(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider)
    tracer = tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request:
        before = time.time_ns()
        client.track("u1", "signed_up", data={"plan": "pro"})
        after = time.time_ns()
    assert kind(exporter, SpanKind.PRODUCER) == []  # made on the sender, not on the caller
    assert cioguard.flush(timeout=5)
    callers = kind(exporter, SpanKind.PRODUCER)
    senders = kind(exporter, SpanKind.CLIENT)
    assert [span.name for span in callers] == ["customerio track"]
    caller = callers[0]
    # Parent and start time are the ones captured at the call.
    assert caller.parent is not None
    assert caller.parent.span_id == request.get_span_context().span_id
    assert caller.context is not None
    assert caller.context.trace_id == request.get_span_context().trace_id
    assert caller.start_time is not None
    assert before <= caller.start_time <= after
    assert caller.end_time is not None
    assert caller.start_time <= caller.end_time <= after
    assert caller.instrumentation_scope is not None
    assert caller.instrumentation_scope.name == "cioguard"
    assert caller.instrumentation_scope.schema_url == SCHEMA_URL
    assert caller.attributes is not None
    assert caller.attributes["messaging.system"] == "customerio"
    assert caller.attributes["messaging.operation.type"] == "create"
    assert caller.attributes["messaging.operation.name"] == "track"
    assert caller.attributes["customerio.method"] == "track"
    assert caller.attributes["customerio.mode"] == "background"
    assert caller.attributes["customerio.event_name"] == "signed_up"
    assert "customerio.customer_id" not in caller.attributes  # personal data: off by default
    assert len(senders) == 1
    sender = senders[0]
    assert sender.name == "POST /api/v2/batch"
    assert sender.attributes is not None
    assert sender.attributes["http.response.status_code"] == 200
    assert sender.attributes["server.address"] == "127.0.0.1"
    assert sender.attributes["server.port"] == fake.port
    assert sender.attributes["url.template"] == "/api/v2/batch"
    assert sender.attributes["messaging.batch.message_count"] == 1
    assert "site" not in str(sender.attributes.get("url.full", ""))  # no credentials in the URL
    assert {link.context.span_id for link in sender.links} == {caller.context.span_id}


def test_producer_spans_off_links_the_send_span_to_the_callers_span(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """Explicit opt-out: ``producer_spans=False``."""
    client = fake.client()
    instrument(tracer_provider=tracer_provider, producer_spans=False)
    with tracer_provider.get_tracer("app").start_as_current_span("request") as request:
        client.track("u1", "signed_up", data={})
    client.track("u2", "no_parent", data={})
    assert cioguard.flush(timeout=5)
    assert kind(exporter, SpanKind.PRODUCER) == []
    links = [link.context.span_id for sender in kind(exporter, SpanKind.CLIENT) for link in sender.links]
    assert links == [request.get_span_context().span_id]  # the call without a parent has no link
    assert len(fake.events) == 2


def test_customer_id_is_recorded_only_when_asked(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider, capture_customer_id=True)
    client.track("u-42", "opened", data={})
    assert cioguard.flush(timeout=5)
    (caller,) = kind(exporter, SpanKind.PRODUCER)
    assert caller.attributes is not None
    assert caller.attributes["customerio.customer_id"] == "u-42"


def test_rejected_send_has_error_status(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    from customerio import CustomerIO

    wrong = CustomerIO(fake.site_id, "wrong-key", host="127.0.0.1", port=fake.port)
    instrument(tracer_provider=tracer_provider)
    wrong.track("u1", "denied", data={})
    assert not cioguard.flush(timeout=5)  # False: the call was rejected
    (sender,) = kind(exporter, SpanKind.CLIENT)
    assert sender.status.status_code == StatusCode.ERROR
    assert sender.attributes is not None
    assert sender.attributes["http.response.status_code"] == 401
    assert sender.attributes["error.type"] == "401"
    assert cioguard.stats()["dropped"].get("rejected") == 1
    assert len(kind(exporter, SpanKind.PRODUCER)) == 1  # the rejected call's span exists too


def test_blocking_mode_makes_a_client_span_with_the_http_status(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider, mode="blocking")
    client.identify("u1", email="ada@example.com")
    (span,) = exporter.get_finished_spans()
    assert span.kind == SpanKind.CLIENT
    assert span.name == "customerio identify"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["customerio.mode"] == "blocking"
    assert span.attributes["messaging.operation.type"] == "send"
    # The SDK's own request, in semantic conventions, without the id in the URL.
    assert span.attributes["http.request.method"] == "PUT"
    assert span.attributes["url.template"] == "/api/v1/customers/{customer_id}"
    assert span.attributes["url.full"] == f"https://127.0.0.1:{fake.port}/api/v1/customers/REDACTED"
    assert span.attributes["server.port"] == fake.port
    assert "u1" not in str(dict(span.attributes))


def test_no_caller_span_inside_suppress_instrumentation(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider)
    with suppress_instrumentation():
        client.track("u1", "quiet", data={})
    assert cioguard.flush(timeout=5)
    assert kind(exporter, SpanKind.PRODUCER) == []
    assert [event.name for event in fake.events] == ["quiet"]  # still delivered


def test_no_op_tracer_provider_works(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(tracer_provider=NoOpTracerProvider())
    client.track("u1", "untraced", data={})
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["untraced"]


class FailingExporter(SpanExporter):
    def __init__(self) -> None:
        self.threads: list[str] = []

    def export(self, spans: object) -> SpanExportResult:
        self.threads.append(threading.current_thread().name)
        raise RuntimeError("exporter down")


def test_a_broken_span_exporter_never_stops_delivery(instrument: Instrument, fake: FakeCustomerIO) -> None:
    provider = TracerProvider()
    failing = FailingExporter()
    provider.add_span_processor(SimpleSpanProcessor(failing))
    client = fake.client()
    instrument(tracer_provider=provider)
    for n in range(3):
        client.track(f"u{n}", "still_delivered", data={})
    assert cioguard.flush(timeout=5)
    assert len(fake.events) == 3
    assert failing.threads  # the spans were made (on cioguard's sender threads)
    assert threading.main_thread().name not in failing.threads
    provider.shutdown()


def test_pitfalls_are_recorded_as_span_events(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider, pitfalls="warn", disabled_pitfalls=["CIO003"])
    with pytest.warns(cioguard.EmailAsIdWarning):
        client.track("ada@example.com", "signed_up", data={})
    assert cioguard.flush(timeout=5)
    (caller,) = kind(exporter, SpanKind.PRODUCER)
    codes = [event.attributes["customerio.pitfall.code"] for event in caller.events if event.attributes]
    assert codes == ["CIO004"]
    assert "ada@example.com" not in str(caller.attributes)


def test_event_names_with_personal_data_or_ids_stay_off_spans_with_rules_off(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider, pitfalls="off")  # no CIO006/CIO012 findings to go by
    for name in ("invited ada@example.com", "order_1234567", "signed_up"):
        client.track("u1", name, data={})
    assert cioguard.flush(timeout=5)
    names = [span.attributes.get("customerio.event_name") for span in kind(exporter, SpanKind.PRODUCER)]
    assert sorted(names, key=str) == [None, None, "signed_up"]


@pytest.mark.parametrize("hook", ["on_start", "on_end"])
def test_a_span_processor_that_raises_never_stops_delivery(
    fake: FakeCustomerIO, registry: CollectorRegistry, hook: str
) -> None:
    """A TracerProvider's processor failing on the sender's CLIENT span: each batch is still sent
    and counted (it stayed "in flight" forever, and six such failures stopped every lane)."""
    from opentelemetry.sdk.trace import Span, SpanProcessor

    class Failing(SpanProcessor):
        def on_start(self, span: Span, parent_context: object = None) -> None:
            if hook == "on_start" and span.kind is SpanKind.CLIENT:
                raise RuntimeError("processor bug")

        def on_end(self, span: ReadableSpan) -> None:
            if hook == "on_end" and span.kind is SpanKind.CLIENT:
                raise RuntimeError("processor bug")

    provider = TracerProvider()
    provider.add_span_processor(Failing())
    cioguard.instrument(track_url=fake.track_url, registry=registry, tracer_provider=provider)
    try:
        cio = fake.client()
        for round_ in range(8):  # more rounds than lanes (6): no lane may stay taken
            for person in range(5):
                cio.identify(f"p{round_}-{person}", email=f"p{round_}-{person}@example.com")
            assert cioguard.flush(timeout=10) is True, cioguard.stats()
        stats = cioguard.stats()
        assert stats["delivered"] == 40
        assert stats["in_flight"] == 0
        assert stats["errors"] >= 8  # counted (and logged once a minute)
    finally:
        cioguard.uninstrument(timeout=5)
        provider.shutdown()
    assert len(fake.people) == 40
