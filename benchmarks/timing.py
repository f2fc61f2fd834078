"""Measurement primitives: per-call latency with the sender's work inside the window, and samples.

Every call is timed on its own with ``time.perf_counter_ns`` (the timer's own cost, measured once
per run, is subtracted), so p99 and p99.9 are real per-call tails — a GIL stall caused by a
sender thread shows up in them — never averages over batches. Calls run in blocks; after each
block the client's ``flush`` runs *inside* the timed window, so a library that defers its work to
a sender thread pays for that work in ``window_ns`` (wall time of blocks + flushes / calls)::

    stats = per_call(lambda: client.track("u1", "signed_up"), Budget(calls=20_000), flush=cg.flush)
    print(stats.median_us, stats.p999_us, stats.window_us)

Every loop is bounded both in count (``calls``) and in time (``seconds``): a slow row yields fewer
calls, never a hung run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How much work one caller-cost row may do."""

    #: Calls to time one by one (the percentiles are over these).
    calls: int = 20_000
    #: Calls between two flushes; each flush is inside the timed window.
    block: int = 2_000
    #: Hard time limit for the row (warm-up excluded).
    seconds: float = 3.0
    #: Un-timed calls before measuring (caches, lazy sessions, first connection), then a flush.
    warmup: int = 200


@dataclass(frozen=True)
class Stats:
    """Per-call figures in nanoseconds."""

    median_ns: float
    p99_ns: float
    p999_ns: float
    mean_ns: float
    min_ns: float
    samples: int
    calls: int
    #: Wall time of the whole window (calls + flushes) per call; ``nan`` when not measured.
    window_ns: float = math.nan

    @property
    def median_us(self) -> float:
        return self.median_ns / 1000

    @property
    def p99_us(self) -> float:
        return self.p99_ns / 1000

    @property
    def p999_us(self) -> float:
        return self.p999_ns / 1000

    @property
    def window_us(self) -> float:
        return self.window_ns / 1000


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation; ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return _quantile(ordered, fraction)


def _quantile(ordered: Sequence[float], fraction: float) -> float:
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(values_ns: Sequence[float], calls: int, window_ns: float = math.nan) -> Stats:
    if not values_ns:
        return Stats(math.nan, math.nan, math.nan, math.nan, math.nan, 0, calls, window_ns)
    ordered = sorted(values_ns)
    return Stats(
        median_ns=_quantile(ordered, 0.5),
        p99_ns=_quantile(ordered, 0.99),
        p999_ns=_quantile(ordered, 0.999),
        mean_ns=sum(ordered) / len(ordered),
        min_ns=ordered[0],
        samples=len(ordered),
        calls=calls,
        window_ns=window_ns,
    )


_timer_ns: float | None = None


def timer_overhead_ns() -> float:
    """The median cost of one ``perf_counter_ns`` pair around nothing (measured once per run)."""
    global _timer_ns
    if _timer_ns is None:
        clock = time.perf_counter_ns
        values = []
        for _ in range(20_000):
            start = clock()
            values.append(clock() - start)
        _timer_ns = float(percentile(values, 0.5))
    return _timer_ns


def per_call(
    call: Callable[[], object],
    budget: Budget,
    flush: Callable[[], object] | None = None,
) -> Stats:
    """Time each ``call``; ``flush`` runs after every block, inside the window (see module doc)."""
    for _ in range(budget.warmup):
        call()
    if flush is not None:
        flush()
    overhead = timer_overhead_ns()
    clock = time.perf_counter_ns
    values: list[float] = []
    append = values.append
    calls = 0
    window = 0
    deadline = time.monotonic() + budget.seconds
    block = range(max(1, min(budget.block, budget.calls)))
    # The garbage collector stays on: its cost is part of what a caller pays.
    while calls < budget.calls and time.monotonic() < deadline:
        began = clock()
        for _ in block:
            start = clock()
            call()
            append(clock() - start)
        if flush is not None:
            flush()
        window += clock() - began
        calls += len(block)
    corrected = [max(0.0, value - overhead) for value in values]
    return summarise(corrected, calls, window / calls if calls else math.nan)


def latencies(call: Callable[[], object], count: int, seconds: float, warmup: int = 3) -> Stats:
    """Time each ``call`` on its own (for calls of 0.1 ms or more: HTTP requests, web requests)."""
    for _ in range(warmup):
        call()
    values: list[float] = []
    deadline = time.monotonic() + seconds
    while len(values) < count and time.monotonic() < deadline:
        start = time.perf_counter_ns()
        call()
        values.append(time.perf_counter_ns() - start)
    return summarise(values, len(values), sum(values) / len(values) if values else math.nan)
