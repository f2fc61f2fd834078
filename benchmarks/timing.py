"""Measurement primitives: per-call caller cost from timed batches, and latency samples.

Caller cost is measured with ``time.perf_counter_ns`` around a batch of calls (so the timer's own
cost is spread over the batch) and reported per call; the median and p99 are taken over samples::

    stats = per_call_cost(lambda: client.track("u1", "signed_up"), budget=Budget(samples=100))
    print(stats.median_us, stats.p99_us)

Every loop is bounded both in count (``samples``) and in time (``seconds``): a slow row yields fewer
samples, never a hung run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How much work one caller-cost row may do."""

    #: Samples to take (the median and p99 are over these).
    samples: int = 100
    #: Calls per sample; ``None`` picks a size so that one sample lasts about ``sample_ns``.
    batch: int | None = None
    #: Target duration of one sample when ``batch`` is ``None``.
    sample_ns: int = 2_000_000
    #: Largest batch the calibration may choose.
    max_batch: int = 1000
    #: Hard time limit for the whole row (calibration and warm-up excluded).
    seconds: float = 3.0
    #: Un-timed calls before measuring (caches, lazy sessions, first connection).
    warmup: int = 20


@dataclass(frozen=True)
class Stats:
    """Summary of samples in nanoseconds (per call, per request…)."""

    median_ns: float
    p99_ns: float
    mean_ns: float
    min_ns: float
    samples: int
    calls: int

    @property
    def median_us(self) -> float:
        return self.median_ns / 1000

    @property
    def p99_us(self) -> float:
        return self.p99_ns / 1000


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation; ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(values_ns: Sequence[float], calls: int) -> Stats:
    return Stats(
        median_ns=percentile(values_ns, 0.5),
        p99_ns=percentile(values_ns, 0.99),
        mean_ns=sum(values_ns) / len(values_ns) if values_ns else math.nan,
        min_ns=min(values_ns) if values_ns else math.nan,
        samples=len(values_ns),
        calls=calls,
    )


def _calibrate(call: Callable[[], object], budget: Budget) -> int:
    if budget.batch is not None:
        return budget.batch
    start = time.perf_counter_ns()
    call()
    one = max(time.perf_counter_ns() - start, 1)
    return max(1, min(budget.max_batch, budget.sample_ns // one))


def per_call_cost(
    call: Callable[[], object],
    budget: Budget,
    between: Callable[[int], None] | None = None,
) -> Stats:
    """Time ``call`` in batches; ``between(calls_so_far)`` runs un-timed after each sample.

    ``between`` is where a queue is flushed so that it never overflows during a row.
    """
    for _ in range(budget.warmup):
        call()
    batch = _calibrate(call, budget)
    if between is not None:
        between(0)
    loop = range(batch)
    values: list[float] = []
    calls = 0
    deadline = time.monotonic() + budget.seconds
    # The garbage collector stays on: its cost is part of what a caller pays.
    while len(values) < budget.samples and time.monotonic() < deadline:
        start = time.perf_counter_ns()
        for _ in loop:
            call()
        elapsed = time.perf_counter_ns() - start
        values.append(elapsed / batch)
        calls += batch
        if between is not None:
            between(calls)
    return summarise(values, calls)


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
    return summarise(values, len(values))
