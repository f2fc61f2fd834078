"""Caller cost of ``track()`` with and without a recording TracerProvider (a script, not a test).

    .venv/bin/python tests/otel/measure_caller_cost.py off          # no tracer provider
    .venv/bin/python tests/otel/measure_caller_cost.py on           # SDK TracerProvider, batch processor
    .venv/bin/python tests/otel/measure_caller_cost.py noproducer   # same, producer_spans=False

Each mode runs in its own process (a tracer provider is process state); the realistic payload has
nested data, ``None``, an ISO date and unicode; pitfall rules are on; the sender is live against the
emulator. Prints the median, p90 and p99 of per-call times. The target (issue 17.4): "on" at most 1.5 times
"off". The headline benchmark row lives in benchmarks/.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from customerio import CustomerIO

import cioguard
from cioguard.testing import FakeCustomerIO

DATA = {
    "plan": "pro",
    "items": [{"sku": "a-1", "qty": 2, "note": None}],
    "when": "2024-05-01T10:00:00Z",
    "name": "Zoë",
}


def tracer_provider() -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    return provider


def main(mode: str, calls: int) -> str:
    warnings.simplefilter("ignore")
    with FakeCustomerIO(https=False, store=False) as fake:
        options: dict[str, Any] = {"track_url": fake.track_url, "max_queue_size": 2 * calls}
        if mode != "off":
            options["tracer_provider"] = tracer_provider()
        if mode == "noproducer":
            options["producer_spans"] = False
        cioguard.instrument(**options)
        cio = CustomerIO(fake.site_id, fake.api_key)
        clock = time.perf_counter_ns
        times = []
        for n in range(calls):
            started = clock()
            cio.track(f"user-{n % 500}", "order_placed", data=DATA)
            times.append(clock() - started)
        cioguard.flush(30)
        cioguard.uninstrument()
    times.sort()
    median, p90, p99 = statistics.median(times), times[calls * 9 // 10], times[calls * 99 // 100]
    return f"{mode}: median {median / 1e3:.2f} us, p90 {p90 / 1e3:.2f} us, p99 {p99 / 1e3:.2f} us"


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "on", int(sys.argv[2]) if len(sys.argv) > 2 else 20_000))
