"""cioguard rows: caller cost in background mode per configuration, and blocking-mode overhead.

Each configuration is instrument → measure → uninstrument in this one process, on the real SDK
client. Background rows flush every few thousand calls (un-timed) so the queue never overflows.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.cio_api import identify_all, instrumented, stat
from benchmarks.harness import EVENT_NAME, SMALL_DATA, Bench, customer_ids
from benchmarks.peers import flusher
from benchmarks.results import Row
from benchmarks.target import cio_target
from benchmarks.timing import Budget, per_call_cost

GROUP = "cioguard"
#: Large enough that a caller-cost row never drops (it flushes every FLUSH_EVERY calls anyway).
QUEUE_SIZE = 200_000
FLUSH_EVERY = 5_000


class _NullExporter(SpanExporter):
    """A span exporter that accepts and discards: spans are recorded and batched, never shipped."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@contextmanager
def recording_provider() -> Iterator[Any]:
    """An OpenTelemetry SDK ``TracerProvider`` recording every span into a BatchSpanProcessor."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_NullExporter()))
    try:
        yield provider
    finally:
        provider.shutdown()


def _background_row(bench: Bench, name: str, options: dict[str, Any], note: str = "") -> Row:
    target = cio_target(bench)
    ids = customer_ids()
    with instrumented(track_url=target.track_url, max_queue_size=QUEUE_SIZE, **options) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()
            send = lambda: client.track(next(ids), EVENT_NAME, SMALL_DATA)  # noqa: E731
            stats = per_call_cost(send, bench.sizes.caller, between=flusher(cg.flush, FLUSH_EVERY))
            cg.flush()
            after = cg.stats()
        finally:
            client.close()
    row = Row.caller(GROUP, name, stats, dropped=stat(after, "dropped"), pitfalls=stat(after, "pitfalls"))
    row.note = note
    return row


def _blocking_row(bench: Bench) -> Row:
    target = cio_target(bench)
    ids = customer_ids()
    with instrumented(track_url=target.track_url, mode="blocking") as _:
        client = target.client()
        try:
            identify_all(client)
            send = lambda: client.track(next(ids), EVENT_NAME, SMALL_DATA)  # noqa: E731
            budget = bench.sizes.caller
            small = max(1, (budget.batch or 100) // 10)
            reduced = Budget(samples=budget.samples // 2 or 1, batch=small, seconds=budget.seconds, warmup=3)
            stats = per_call_cost(send, reduced)
        finally:
            client.close()
    row = Row.caller(GROUP, "cioguard blocking, 0 ms", stats)
    bare = next((r for r in bench.rows if r.name == "customerio SDK track, 0 ms" and r.status == "ok"), None)
    if bare is not None:
        row.extra["overhead_us"] = row.median - bare.median
        row.extra["overhead_pct"] = 100 * (row.median - bare.median) / bare.median
        row.note = f"+{row.median - bare.median:.0f} us over the bare SDK"
    return row


def run(bench: Bench) -> None:
    rows: list[tuple[str, Callable[[], Row]]] = [
        (
            "cioguard bg, no tracer, pitfalls off",
            lambda: _background_row(bench, "cioguard bg, no tracer, pitfalls off", {"pitfalls": "off"}),
        ),
        (
            "cioguard bg, no tracer",
            lambda: _background_row(bench, "cioguard bg, no tracer", {}, "defaults: every pitfall rule on"),
        ),
    ]
    for name, measure in rows:
        bench.guard(GROUP, name, "us/call", measure)

    def spans() -> Row:
        with recording_provider() as provider:
            return _background_row(
                bench,
                "cioguard bg, OTel SDK spans",
                {"tracer_provider": provider},
                "TracerProvider + BatchSpanProcessor",
            )

    bench.guard(GROUP, "cioguard bg, OTel SDK spans", "us/call", spans)
    for sync in ("group", "always"):
        name = f"cioguard bg, spool sync={sync}"

        def spool(sync: str = sync, name: str = name) -> Row:
            with tempfile.TemporaryDirectory(prefix="cioguard-bench-") as folder:
                path = str(Path(folder) / "spool.sqlite")
                return _background_row(bench, name, {"spool_path": path, "spool_sync": sync})

        bench.guard(GROUP, name, "us/call", spool)
    bench.guard(GROUP, "cioguard blocking, 0 ms", "us/call", lambda: _blocking_row(bench))
