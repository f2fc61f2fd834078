"""Rows for the queue-based peers: Segment ``track()`` and PostHog ``capture()`` against the sink.

Both libraries put a dict on a ``queue.Queue`` and send batches from a daemon thread; they are the
reference for what "non-blocking" costs a caller in Python today. Their hosts point at the sink
over HTTPS (Segment posts ``/v1/batch``, PostHog ``/batch/``). Each is measured on both payload
sets exactly as cioguard is: calls timed one by one while their sender thread runs, and their own
``flush()`` inside the timed window after every block. Each row also reports delivered events/s and
HTTP requests per 1 000 events measured on the sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import EVENT_NAME, PAYLOADS, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.timing import per_call

GROUP = "peer"


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


def _segment(bench: Bench, payload: str) -> Row:
    from segment.analytics import Client

    ids = customer_ids()
    data = PAYLOADS[payload]
    client: Any = Client("bench-write-key", host=bench.sink.url, max_queue_size=100_000)
    try:
        send = lambda: client.track(next(ids), EVENT_NAME, data)  # noqa: E731
        stats = per_call(send, bench.sizes.caller, flush=client.flush)
        extra = delivery_rate(bench, send, client.flush)
        return Row.caller(
            GROUP, f"segment track(), {payload}", stats, payload=payload, baseline="segment", **extra
        )
    finally:
        client.shutdown()


def _posthog(bench: Bench, payload: str) -> Row:
    from posthog import Posthog

    ids = customer_ids()
    data = PAYLOADS[payload]
    client: Any = Posthog("phc_bench", host=bench.sink.url, max_queue_size=100_000, disable_geoip=True)
    try:
        send = lambda: client.capture(EVENT_NAME, distinct_id=next(ids), properties=data)  # noqa: E731
        stats = per_call(send, bench.sizes.caller, flush=client.flush)
        extra = delivery_rate(bench, send, client.flush)
        return Row.caller(
            GROUP, f"posthog capture(), {payload}", stats, payload=payload, baseline="posthog", **extra
        )
    finally:
        client.shutdown()


def run(bench: Bench) -> None:
    for payload in PAYLOADS:

        def segment(payload: str = payload) -> Row:
            return _segment(bench, payload)

        def posthog(payload: str = payload) -> Row:
            return _posthog(bench, payload)

        bench.guard(GROUP, f"segment track(), {payload}", "us/call", segment)
        bench.guard(GROUP, f"posthog capture(), {payload}", "us/call", posthog)
