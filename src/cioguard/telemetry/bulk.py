"""Many histogram observations at once: the sender records a whole batch in a few lock rounds.

::

    from prometheus_client import Histogram
    from cioguard.telemetry.bulk import observe_many

    lag = Histogram("lag_seconds", "…", buckets=(0.1, 1.0, 10.0))
    observe_many(lag, [0.05, 0.4, 0.4, 3.0])     # same result as lag.observe(v) for each v

prometheus_client has no public "observe N values" call, and ``Histogram.observe`` costs about
1 µs per value (a lock round and a bucket scan each), ~0.5 ms for a 500-operation batch. The fast
path increments each bucket once by its count, through the fields ``Histogram.observe`` itself
updates (``_upper_bounds``, ``_buckets``, ``_sum``; unchanged since prometheus_client 0.4).

It can never break silently: :func:`fast_path_ok` checks the fields' shape on every call and, once
per process, checks the fast path against the public ``observe`` + ``collect`` on a throwaway
histogram; if either check fails, values go through the public ``observe`` one by one (and a
warning is logged once). ``tests/telemetry/test_telemetry_prometheus.py`` pins the same check to
the installed prometheus_client version, so a client_python refactor fails the test suite loudly.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from prometheus_client import Histogram

logger = logging.getLogger("cioguard.telemetry")

_verified: bool | None = None
_verify_lock = threading.Lock()


def _shape_ok(histogram: Any) -> bool:
    bounds = getattr(histogram, "_upper_bounds", None)
    counts = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    return (
        isinstance(bounds, list)
        and isinstance(counts, list)
        and len(bounds) == len(counts) > 0
        and bounds[-1] == math.inf
        and hasattr(total, "inc")
        and hasattr(counts[0], "inc")
    )


def _fast(histogram: Any, ordered: Sequence[float]) -> None:
    """Add ``ordered`` (sorted ascending, no NaN) to ``histogram`` through its own fields."""
    below = 0
    for bound, bucket in zip(histogram._upper_bounds, histogram._buckets, strict=True):
        # bisect_right counts values <= bound: the bucket Histogram.observe picks (``le`` is
        # inclusive). In memory buckets are not cumulative; exposition sums them.
        upto = bisect_right(ordered, bound)
        if upto > below:
            bucket.inc(upto - below)
            below = upto
    histogram._sum.inc(sum(ordered))


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in histogram.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def verify_fast_path() -> bool:
    """Whether the fast path gives exactly what public ``observe`` gives, in this prometheus_client.

    Compares both on two unregistered histograms through the public ``collect()``. Skipped (only
    the per-call shape check applies) in multiprocess mode, where even an unregistered histogram
    writes its values into the shared files that every scrape reads.
    """
    legacy = "prometheus_multiproc_dir"  # still honoured by prometheus_client
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(legacy):
        return True
    values = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 100.0, -1.0]
    bounds = (0.5, 1.0, 2.0)
    public = Histogram("cioguard_selfcheck", "self-check", buckets=bounds, registry=None)
    bulk = Histogram("cioguard_selfcheck", "self-check", buckets=bounds, registry=None)
    for value in values:
        public.observe(value)
    if not _shape_ok(bulk):
        return False
    _fast(bulk, sorted(values))
    return _samples(public) == _samples(bulk)


def fast_path_ok(histogram: Any) -> bool:
    """True when ``histogram`` (an observable child) can take the fast path."""
    global _verified
    if _verified is None:
        with _verify_lock:
            if _verified is None:
                try:
                    _verified = verify_fast_path()
                except Exception:
                    _verified = False
                if not _verified:
                    logger.warning(
                        "cioguard: prometheus_client's Histogram internals changed; recording "
                        "batches value by value (correct, slower). Please report your "
                        "prometheus_client version."
                    )
    return _verified and _shape_ok(histogram)


def ordered(values: Sequence[float]) -> list[float]:
    """``values`` sorted, NaN removed: the input of :func:`observe_ordered` (sort once, use twice)."""
    if any(map(math.isnan, values)):  # (C-level scans: a batch holds up to 2 000 values)
        return sorted(value for value in values if value == value)  # NaN != NaN
    return sorted(values)


def observe_ordered(histogram: Any, values: Sequence[float]) -> None:
    """:func:`observe_many` for values already passed through :func:`ordered`."""
    if not values:
        return
    if fast_path_ok(histogram):
        _fast(histogram, values)
        return
    for value in values:
        histogram.observe(value)


def observe_many(histogram: Any, values: Sequence[float]) -> None:
    """``histogram.observe(v)`` for each value, with one lock round per bucket instead of per value.

    NaN values are skipped (``observe`` would put them in no bucket but poison ``_sum``).
    """
    observe_ordered(histogram, ordered(values))
