"""cioguard rows: caller cost in background mode per configuration, and blocking-mode overhead.

Each configuration is instrument → measure → uninstrument in this one process, on the real SDK
client, with defaults unless the row says otherwise (the headline rows run every pitfall rule).
Calls are timed one by one while the sender thread runs; ``cioguard.flush()`` runs inside the
timed window after every block, exactly as the peers' ``flush()`` does (:mod:`benchmarks.timing`).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.cio_api import identify_all, instrumented, stat
from benchmarks.harness import EVENT_NAME, PAYLOADS, SMALL_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.target import cio_target
from benchmarks.timing import latencies, per_call

GROUP = "cioguard"
#: The headline row: realistic payload, every pitfall rule on, sender live.
HEADLINE = "cioguard track(), realistic"
SPANS = "cioguard track(), realistic, OTel SDK spans"


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


def _background_row(bench: Bench, name: str, payload: str, options: dict[str, Any], note: str = "") -> Row:
    """Caller cost of ``track()`` with the sender live and ``flush()`` inside the timed window."""
    target = cio_target(bench)
    ids = customer_ids()
    data = PAYLOADS[payload]
    # instrument()'s defaults (a 10 000-operation queue): a block of 5 000 calls is flushed before
    # the next, so nothing drops, and the backpressure a user gets near half full is in the figures.
    with instrumented(track_url=target.track_url, **options) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()
            send = lambda: client.track(next(ids), EVENT_NAME, data)  # noqa: E731
            with warnings.catch_warnings():
                # Python's default filter: a repeated finding is shown once per call site, as in an app.
                warnings.simplefilter("default")
                stats = per_call(send, bench.sizes.caller, flush=cg.flush)
            after = cg.stats()
        finally:
            client.close()
    row = Row.caller(
        GROUP,
        name,
        stats,
        payload=payload,
        dropped=stat(after, "dropped"),
        pitfalls=stat(after, "pitfalls"),
    )
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
            sizes = bench.sizes
            stats = latencies(send, sizes.slow_calls * 4, sizes.slow_seconds, warmup=3)
        finally:
            client.close()
    row = Row.caller(GROUP, "cioguard blocking, 0 ms", stats, payload="small")
    bare = next((r for r in bench.rows if r.name == "customerio SDK track, 0 ms" and r.status == "ok"), None)
    if bare is not None:
        row.extra["overhead_us"] = row.median - bare.median
        row.extra["overhead_pct"] = 100 * (row.median - bare.median) / bare.median
        row.note = f"+{row.median - bare.median:.0f} us over the bare SDK"
    return row


#: (row name, payload, options, note) of the background rows; the first is the headline.
BACKGROUND_ROWS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (HEADLINE, "realistic", {}, "defaults: every pitfall rule on"),
    ("cioguard track(), small", "small", {}, "defaults: every pitfall rule on"),
    ("cioguard track(), realistic, rules off", "realistic", {"pitfalls": "off"}, "pitfalls='off'"),
    ("cioguard track(), small, rules off", "small", {"pitfalls": "off"}, "pitfalls='off'"),
)


def run(bench: Bench) -> None:
    for spec in BACKGROUND_ROWS:

        def background(spec: tuple[str, str, dict[str, Any], str] = spec) -> Row:
            return _background_row(bench, *spec)

        bench.guard(GROUP, spec[0], "us/call", background)

    def spans() -> Row:
        with recording_provider() as provider:
            return _background_row(
                bench,
                SPANS,
                "realistic",
                {"tracer_provider": provider},
                "TracerProvider + BatchSpanProcessor",
            )

    bench.guard(GROUP, SPANS, "us/call", spans)
    for sync in ("group", "always"):
        name = f"cioguard track(), small, spool sync={sync}"

        def spool(sync: str = sync, name: str = name) -> Row:
            with tempfile.TemporaryDirectory(prefix="cioguard-bench-") as folder:
                path = str(Path(folder) / "spool.sqlite")
                return _background_row(bench, name, "small", {"spool_path": path, "spool_sync": sync})

        bench.guard(GROUP, name, "us/call", spool)
    bench.guard(GROUP, "cioguard blocking, 0 ms", "us/call", lambda: _blocking_row(bench))
