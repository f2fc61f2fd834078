"""Rows for the queue-based peers: Segment ``track()`` and PostHog ``capture()`` against the sink.

Both libraries put a dict on a ``queue.Queue`` and send batches from a daemon thread; they are the
reference for what "non-blocking" costs a caller in Python today. Their hosts point at the sink
over HTTPS (Segment posts ``/v1/batch``, PostHog ``/batch/``). Each row also reports delivered
events/s and HTTP requests per 1 000 events measured on the sink, and the queue is flushed between
samples so it never overflows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import EVENT_NAME, SMALL_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.timing import per_call_cost

GROUP = "peer"


def flusher(flush: Callable[[], object], every: int) -> Callable[[int], None]:
    """A ``between`` hook that flushes once at least ``every`` calls were made since the last flush."""
    last = [0]

    def between(calls: int) -> None:
        if calls - last[0] >= every or calls == 0:
            flush()
            last[0] = calls

    return between


def delivery_rate(bench: Bench, send: Callable[[], object], flush: Callable[[], object]) -> dict[str, float]:
    """Send ``throughput_events`` calls, flush, and read what the sink received."""
    # A quarter of cioguard's budget: the peers' senders are slow and flush() waits for all of it.
    events_cap, seconds = bench.sizes.throughput_events // 4, bench.sizes.throughput_seconds / 4
    flush()
    bench.sink.reset()
    deadline = time.monotonic() + seconds
    start = time.perf_counter()
    sent = 0
    while sent < events_cap and time.monotonic() < deadline:
        for _ in range(100):
            send()
        sent += 100
    flush()
    elapsed = time.perf_counter() - start
    stats = bench.sink.stats()
    events = int(stats["events"])
    return {
        "sent": sent,
        "delivered": events,
        "delivered_per_s": events / elapsed if elapsed > 0 else 0.0,
        "requests_per_1000_events": 1000 * int(stats["requests"]) / events if events else float("nan"),
    }


def run(bench: Bench) -> None:
    ids = customer_ids()
    budget = bench.sizes.caller

    def segment() -> Row:
        from segment.analytics import Client

        client: Any = Client("bench-write-key", host=bench.sink.url, max_queue_size=100_000)
        try:
            send = lambda: client.track(next(ids), EVENT_NAME, SMALL_DATA)  # noqa: E731
            stats = per_call_cost(send, budget, between=flusher(client.flush, 5_000))
            extra = delivery_rate(bench, send, client.flush)
            return Row.caller(GROUP, "segment track()", stats, **extra)
        finally:
            client.shutdown()

    def posthog() -> Row:
        from posthog import Posthog

        client: Any = Posthog("phc_bench", host=bench.sink.url, max_queue_size=100_000, disable_geoip=True)
        try:
            send = lambda: client.capture(EVENT_NAME, distinct_id=next(ids), properties=SMALL_DATA)  # noqa: E731
            stats = per_call_cost(send, budget, between=flusher(client.flush, 5_000))
            extra = delivery_rate(bench, send, client.flush)
            return Row.caller(GROUP, "posthog capture()", stats, **extra)
        finally:
            client.shutdown()

    bench.guard(GROUP, "segment track()", "us/call", segment)
    bench.guard(GROUP, "posthog capture()", "us/call", posthog)
