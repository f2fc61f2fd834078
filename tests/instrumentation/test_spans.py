"""Caller spans, send spans and the links between them, with OpenTelemetry's in-memory exporter."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import cioguard
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


def test_caller_span_is_linked_from_the_send_span(
    instrument: Instrument,
    fake: FakeCustomerIO,
    tracer_provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = fake.client()
    instrument(tracer_provider=tracer_provider)
    client.track("u1", "signed_up", data={"plan": "pro"})
    assert cioguard.flush(timeout=5)
    spans = exporter.get_finished_spans()
    callers = [span for span in spans if span.kind == SpanKind.PRODUCER]
    senders = [span for span in spans if span.kind == SpanKind.CLIENT]
    assert [span.name for span in callers] == ["customerio track"]
    caller = callers[0]
    assert caller.attributes is not None
    assert caller.attributes["customerio.method"] == "track"
    assert caller.attributes["customerio.mode"] == "background"
    assert caller.attributes["customerio.event_name"] == "signed_up"
    assert "customerio.customer_id" not in caller.attributes  # personal data: off by default
    assert len(senders) == 1
    sender = senders[0]
    assert sender.attributes is not None
    assert sender.attributes["http.response.status_code"] == 200
    assert "site" not in str(sender.attributes.get("url.full", ""))  # no credentials in the URL
    linked = {link.context.span_id for link in sender.links}
    assert caller.context is not None
    assert caller.context.span_id in linked


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
    (caller,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.PRODUCER]
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
    assert cioguard.flush(timeout=5)
    (sender,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.CLIENT]
    assert sender.status.status_code == StatusCode.ERROR
    assert sender.attributes is not None
    assert sender.attributes["http.response.status_code"] == 401
    assert cioguard.stats()["dropped"].get("rejected") == 1


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
    assert [span for span in exporter.get_finished_spans() if span.kind == SpanKind.PRODUCER] == []
    assert [event.name for event in fake.events] == ["quiet"]  # still delivered


def test_no_op_tracer_provider_works(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(tracer_provider=NoOpTracerProvider())
    client.track("u1", "untraced", data={})
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["untraced"]


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
    (caller,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.PRODUCER]
    codes = [event.attributes["customerio.pitfall.code"] for event in caller.events if event.attributes]
    assert codes == ["CIO004"]
    assert "ada@example.com" not in str(caller.attributes)
