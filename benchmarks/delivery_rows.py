"""Delivery rows: events/s delivered and HTTP requests per 1 000 events, at 0 and 50 ms server delay.

Two measurements per delay, both counted on the server side (the sink, or the emulator):

- **end to end**: one thread calls ``track()`` as fast as it can for ``throughput_events`` calls (or
  the time limit), then ``flush()``; events delivered / elapsed, with ``instrument()``'s defaults
  (its backpressure slows a producer that outruns the sender; drops, if any, are in ``extra``):
  the sustained rate of producer + sender sharing one interpreter (the caller cost bounds it:
  20 us per call caps it at 50 000/s).
- **drain**: the sink is put on hold, the queue is filled with the same number of events, then the
  hold is released and the time to ``flush()`` is measured: the sender's sending capacity, with no
  producer competing for the GIL. While requests wait, a spare sender thread keeps taking calls in
  (lane, ULID, deferred pitfall rules), so that part of the sender's work happens during the fill
  and is not in this figure; the end-to-end row counts everything. This one always uses the
  benchmark sink (it needs the hold).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.cio_api import identify_all, instrumented, stat
from benchmarks.depth import HOLD_TIMEOUT, held
from benchmarks.harness import EVENT_NAME, SMALL_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.target import CioTarget, SinkTarget, cio_target

GROUP = "delivery"


def _figures(
    sent: int, requests: int, events: int, elapsed: float, flushed: bool, dropped: int
) -> dict[str, Any]:
    return {
        "sent": sent,
        "delivered": events,
        "requests": requests,
        "seconds": elapsed,
        "flushed": flushed,
        "dropped": dropped,
        "delivered_per_s": events / elapsed if elapsed > 0 else 0.0,
        "requests_per_1000_events": 1000 * requests / events if events else float("nan"),
    }


def end_to_end(bench: Bench, target: CioTarget) -> dict[str, Any]:
    sizes = bench.sizes
    ids = customer_ids()
    # Defaults only: the backpressure a user gets (GIL hand-off above half full, short pauses near
    # full) is what keeps a producer from outrunning the sender; any drop is in the figures.
    with instrumented(track_url=target.track_url) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()
            requests0, events0 = target.counts()
            deadline = time.monotonic() + sizes.throughput_seconds
            start = time.perf_counter()
            sent = 0
            while sent < sizes.throughput_events and time.monotonic() < deadline:
                for _ in range(100):
                    client.track(next(ids), EVENT_NAME, SMALL_DATA)
                sent += 100
            flushed = cg.flush(timeout=sizes.throughput_seconds + 10.0)
            elapsed = time.perf_counter() - start
            dropped = stat(cg.stats(), "dropped")
        finally:
            client.close()
    requests1, events1 = target.counts()
    return _figures(sent, requests1 - requests0, events1 - events0, elapsed, bool(flushed), dropped)


def drain(bench: Bench, target: SinkTarget) -> dict[str, Any]:
    sizes = bench.sizes
    ids = customer_ids()
    count = sizes.throughput_events // 2
    options: dict[str, Any] = {"max_queue_size": count + 10_000, "request_timeout": HOLD_TIMEOUT}
    with instrumented(track_url=target.track_url, **options) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()
            requests0, events0 = target.counts()
            with held(bench):
                deadline = time.monotonic() + sizes.throughput_seconds
                sent = 0
                while sent < count and time.monotonic() < deadline:
                    for _ in range(100):
                        client.track(next(ids), EVENT_NAME, SMALL_DATA)
                    sent += 100
                start = time.perf_counter()
            flushed = cg.flush(timeout=sizes.throughput_seconds + 10.0)
            elapsed = time.perf_counter() - start
            dropped = stat(cg.stats(), "dropped")
        finally:
            client.close()
    requests1, events1 = target.counts()
    return _figures(sent, requests1 - requests0, events1 - events0, elapsed, bool(flushed), dropped)


def _rows(bench: Bench, delay_ms: int) -> None:
    target = cio_target(bench)
    sink = SinkTarget(bench.sink)
    target.set_latency(delay_ms / 1000)
    sink.set_latency(delay_ms / 1000)
    try:
        figures = end_to_end(bench, target)
        bench.add(
            Row(
                GROUP,
                f"cioguard delivered events/s, {delay_ms} ms",
                "events/s",
                figures["delivered_per_s"],
                samples=1,
                extra=figures,
            )
        )
        bench.add(
            Row(
                GROUP,
                f"cioguard requests per 1000 events, {delay_ms} ms",
                "req/1k ev",
                figures["requests_per_1000_events"],
                samples=1,
                extra={"server_delay_ms": delay_ms},
            )
        )
        drained = drain(bench, sink)
        bench.add(
            Row(
                GROUP,
                f"cioguard queue drain events/s, {delay_ms} ms",
                "events/s",
                drained["delivered_per_s"],
                samples=1,
                extra=drained,
                note=f"{drained['requests_per_1000_events']:.2f} req/1k events; sending only",
            )
        )
    finally:
        target.set_latency(0.0)
        sink.set_latency(0.0)


def run(bench: Bench) -> None:
    for delay_ms in (0, 50):

        def measure(delay_ms: int = delay_ms) -> None:
            _rows(bench, delay_ms)

        bench.guard(GROUP, f"cioguard delivery, {delay_ms} ms", "events/s", measure)
