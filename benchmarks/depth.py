"""Memory per queued event, and how caller cost and memory grow with queue depth and event size.

The sink is put on hold, so the sender's first request waits and every later event stays queued.
The queue is filled to each depth (1, 1 000, 100 000 small events; 1 000 events of 10 KB) while the
process's resident memory growth is measured, then a few hundred calls are timed at that depth,
then up to 10 000 more calls run under ``tracemalloc``. The row value is the ``tracemalloc`` figure:
bytes still allocated per accepted, undelivered event (including the batch in flight). It is exact
and unaffected by memory the allocator reuses, but it counts reserved-but-untouched buffer space
(a large ``malloc`` block is only resident once written); the RSS growth is in the note and in
``extra``, only a lower bound (the allocator reuses memory freed by earlier rows). The hold is then
released and everything is flushed. 10 KB x 100 000 (1 GB) is left out on purpose.

Segment and PostHog get the same memory measurement at the middle depth for comparison.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.cio_api import identify_all, instrumented, stat
from benchmarks.harness import EVENT_NAME, Bench, customer_ids, sized_data
from benchmarks.results import Row
from benchmarks.target import SinkTarget
from benchmarks.timing import Budget, per_call

GROUP = "depth"
#: A held request must outlast the fill; cioguard and the peers get this request timeout here.
HOLD_TIMEOUT = 60.0
#: tracemalloc's count runs over at most this many extra calls (per-event cost does not depend on depth).
ALLOCATED_SAMPLE = 10_000
#: Seconds the sender gets to take queued calls in before and after the tracemalloc count, and
#: the most it is then waited for to finish (100 000 calls a tight loop queued take it ~0.8 s).
SETTLE = 0.5
INTAKE_WAIT = 10.0


def resident_bytes() -> int | None:
    """This process's resident set size (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def resident_per_call(send: Callable[[], object], count: int) -> float:
    """RSS growth per call over ``count`` calls of ``send`` (what a user pays; ``nan`` off Linux)."""
    gc.collect()
    before = resident_bytes()
    for _ in range(count):
        send()
    gc.collect()
    after = resident_bytes()
    if before is None or after is None or not count:
        return float("nan")
    return (after - before) / count


def allocated_per_call(
    send: Callable[[], object], count: int, settle: float = 0.0, waiting: Callable[[], int] | None = None
) -> float:
    """Bytes ``tracemalloc`` sees still allocated per call: counts reserved-but-untouched buffers too.

    ``settle`` seconds pass before the count starts and before it ends, and then, with ``waiting``
    (calls a sender thread has yet to take in), until it reads 0 (at most :data:`INTAKE_WAIT` s):
    work a sender still does on earlier calls (taking them in makes new objects) is not counted
    as this window's, and this window's calls are counted as they stay queued."""
    gc.collect()
    _settle(settle, waiting)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            send()
        _settle(settle, waiting)
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - start) / count if count else float("nan")
    finally:
        tracemalloc.stop()


def _settle(seconds: float, waiting: Callable[[], int] | None) -> None:
    time.sleep(seconds)
    deadline = time.monotonic() + INTAKE_WAIT
    while waiting is not None and waiting() and time.monotonic() < deadline:
        time.sleep(0.05)


def _cioguard_waiting() -> int:
    """Calls cioguard's sender has yet to take in (an internal read, for this benchmark only)."""
    from cioguard.instrumentation.instrumentor import active_runtime

    runtime = active_runtime()
    inbox = getattr(runtime.engine, "inbox", None) if runtime is not None else None
    return len(inbox) if inbox is not None else 0


def _resident_note(resident: float, depth: int) -> str:
    # The allocator reuses memory freed by earlier rows, so RSS growth is only a lower bound, and
    # below ~10 000 events it says nothing at all.
    return f"RSS growth >= {resident:,.0f} B/event (reuse)" if depth >= 10_000 else ""


@contextmanager
def held(bench: Bench) -> Iterator[None]:
    bench.sink.hold()
    try:
        yield
    finally:
        bench.sink.release()


def _cioguard_depth(bench: Bench, depth: int, size: int) -> None:
    target = SinkTarget(bench.sink)  # the hold switch exists on the sink only
    ids = customer_ids()
    data = sized_data(size)
    label = f"{size // 1000} KB" if size >= 1000 else f"{size} B"
    options: dict[str, Any] = {
        # Twice what the row queues: the queue stays under half full, where callers start to
        # hand the sender the GIL (backpressure is not what this row measures).
        "max_queue_size": 2 * (depth + ALLOCATED_SAMPLE) + 10_000,
        "request_timeout": HOLD_TIMEOUT,
    }
    with instrumented(track_url=target.track_url, **options) as cg:
        client = target.client()
        try:
            identify_all(client)
            cg.flush()
            send = lambda: client.track(next(ids), EVENT_NAME, data)  # noqa: E731
            with held(bench):
                resident = resident_per_call(send, depth)
                queued = stat(cg.stats(), "queue_size", "queued", "queue")
                calls = min(1_000, bench.sizes.caller.calls)
                budget = Budget(calls=calls, block=calls, seconds=2.0, warmup=0)
                stats = per_call(send, budget)
                # (cioguard's sender keeps taking calls in while its requests wait: let it settle)
                allocated = allocated_per_call(
                    send, min(depth, ALLOCATED_SAMPLE), settle=SETTLE, waiting=_cioguard_waiting
                )
            flushed = cg.flush(timeout=HOLD_TIMEOUT)
        finally:
            client.close()
    extra: dict[str, Any] = {
        "depth": depth,
        "event_bytes": size,
        "queue_size_reported": queued,
        "flushed": bool(flushed),
    }
    if depth >= 100:
        memory_extra = {**extra, "resident_bytes_per_event": resident}
        bench.add(
            Row(
                GROUP,
                f"cioguard memory per queued event, {label}, depth {depth:,}",
                "B/event",
                allocated,
                samples=1,
                extra=memory_extra,
                note=_resident_note(resident, depth),
            )
        )
    name = f"cioguard caller cost, {label}, depth {depth:,}"
    bench.add(Row.caller(GROUP, name, stats, payload="small" if size <= 100 else "", **extra))


def _peer_memory(bench: Bench, peer: str, depth: int) -> Row:
    ids = customer_ids()
    data = sized_data(100)
    client: Any
    if peer == "segment":
        from segment.analytics import Client

        client = Client(
            "bench-write-key",
            host=bench.sink.url,
            max_queue_size=depth + ALLOCATED_SAMPLE + 1000,
            timeout=HOLD_TIMEOUT,
        )
        send = lambda: client.track(next(ids), EVENT_NAME, data)  # noqa: E731
    else:
        from posthog import Posthog

        client = Posthog(
            "phc_bench",
            host=bench.sink.url,
            max_queue_size=depth + ALLOCATED_SAMPLE + 1000,
            timeout=HOLD_TIMEOUT,
            disable_geoip=True,
        )
        send = lambda: client.capture(EVENT_NAME, distinct_id=next(ids), properties=data)  # noqa: E731
    try:
        with held(bench):
            resident = resident_per_call(send, depth)
            allocated = allocated_per_call(send, min(depth, ALLOCATED_SAMPLE))
        client.flush()
    finally:
        client.shutdown()
    return Row(
        GROUP,
        f"{peer} memory per queued event, 100 B, depth {depth:,}",
        "B/event",
        allocated,
        samples=1,
        extra={"depth": depth, "event_bytes": 100, "resident_bytes_per_event": resident},
        note=_resident_note(resident, depth),
    )


def run(bench: Bench) -> None:
    depths = bench.sizes.depths
    middle = depths[len(depths) // 2]
    combos = [(depth, 100) for depth in depths] + [(middle, bench.sizes.big_event_bytes)]
    for depth, size in combos:
        name = f"cioguard depth {depth}, {size} B"

        def measure(depth: int = depth, size: int = size) -> None:
            _cioguard_depth(bench, depth, size)

        bench.guard(GROUP, name, "us/call", measure)
    for peer in ("segment", "posthog"):

        def peer_row(peer: str = peer) -> Row:
            return _peer_memory(bench, peer, middle)

        bench.guard(GROUP, f"{peer} memory per queued event", "B/event", peer_row)
