"""``export_pending``: spans still queued in the OTel SDK are exported at an exit that skips atexit,
and a collector that does not answer never holds the exit up beyond the bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from cioguard.telemetry.exit_export import export_pending


class Gate(SpanExporter):
    """Exports into a list once ``opened`` is set (a stalled collector until then)."""

    def __init__(self, opened: bool) -> None:
        self.opened = threading.Event()
        if opened:
            self.opened.set()
        self.spans: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.opened.wait(10.0)
        self.spans.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def provider_with_one_span(exporter: Gate) -> TracerProvider:
    """A provider whose batch processor holds one ended span (its own export is a minute away)."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    provider.get_tracer("t").start_span("customerio track").end()
    return provider


def test_pending_spans_are_exported() -> None:
    exporter = Gate(opened=True)
    provider = provider_with_one_span(exporter)
    export_pending(provider, None)
    assert exporter.spans == ["customerio track"]
    provider.shutdown()


def test_a_stalled_exporter_never_holds_the_exit_beyond_the_bound() -> None:
    exporter = Gate(opened=False)
    provider = provider_with_one_span(exporter)
    began = time.monotonic()
    export_pending(provider, None, seconds=0.2)
    assert time.monotonic() - began < 1.0  # the SDK's force_flush ignores its own timeout
    exporter.opened.set()  # let the export thread finish
    provider.shutdown()
