"""The shared state of one benchmark run: sizes, the sink, the workload and the collected rows.

Each row group (``floors``, ``sdk``, ``peers``, ``cioguard_rows``, ``depth``, ``web``) is a module with
``run(bench: Bench) -> None`` that measures and calls :meth:`Bench.add`. A row that raises becomes an
``error`` row and the run goes on, so one broken configuration never hides the others.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from benchmarks.results import Row
from benchmarks.sink import SinkProcess
from benchmarks.timing import Budget


@dataclass(frozen=True)
class Sizes:
    """How much work each kind of row does (``FULL`` for ``make bench``, ``QUICK`` for CI)."""

    caller: Budget
    #: Calls timed one by one for rows of a millisecond or more (blocking SDK, web requests).
    slow_calls: int
    slow_seconds: float
    #: Events sent per throughput row, and that row's time limit.
    throughput_events: int
    throughput_seconds: float
    #: Queue depths for the depth and memory rows, and the large event size in bytes.
    depths: tuple[int, ...]
    big_event_bytes: int
    #: Requests per web row.
    web_requests: int


FULL = Sizes(
    caller=Budget(calls=50_000, block=5_000, seconds=8.0, warmup=500),
    slow_calls=60,
    slow_seconds=6.0,
    throughput_events=200_000,
    throughput_seconds=20.0,
    depths=(1, 1_000, 100_000),
    big_event_bytes=10_000,
    web_requests=400,
)

QUICK = Sizes(
    caller=Budget(calls=400, block=200, seconds=0.5, warmup=20),
    slow_calls=3,
    slow_seconds=0.5,
    throughput_events=2_000,
    throughput_seconds=5.0,
    depths=(1, 100),
    big_event_bytes=10_000,
    web_requests=10,
)

#: Site id / key given to every SDK client (the sink accepts anything; never real credentials).
SITE_ID = "bench-site"
API_KEY = "bench-key"
#: Customer ids the workload cycles through (identified up front, so no CIO003 fires).
CUSTOMER_IDS = tuple(f"user-{n}" for n in range(64))
EVENT_NAME = "order_completed"
#: About 100 bytes once serialised with the name and id: the "small event".
SMALL_DATA: dict[str, Any] = {"plan": "pro", "amount": 42, "currency": "EUR", "coupon": "none"}
#: What applications send (about 600 bytes of JSON): nesting, ``None`` values, an ISO date string
#: (``placed_at``: the same CIO002 finding at the same call site on every call), a ``datetime``
#: (sent as Unix seconds, as the SDK does), floats and non-ASCII text.
REALISTIC_DATA: dict[str, Any] = {
    "order_id": "A-10023",
    "total": 129.9,
    "currency": "EUR",
    "coupon": None,
    "placed_at": "2024-05-01T10:20:30Z",
    "shipped_at": dt.datetime(2024, 5, 2, 8, 0, tzinfo=dt.timezone.utc),
    "customer": {"name": "Zoë Müller", "tier": "gold", "referrer": None},
    "items": [
        {"sku": "sku-1", "name": "Café mug ☕", "qty": 2, "price": 9.95, "discount": None},
        {"sku": "sku-2", "name": "Green tea", "qty": 1, "price": 19.5, "discount": 0.1},
    ],
    "shipping": {"method": "express", "address": {"city": "Zürich", "country": "CH", "line2": None}},
    "tags": ["gift", "repeat"],
}
#: The two payload sets every caller-cost comparison is made on.
PAYLOADS: dict[str, dict[str, Any]] = {"small": SMALL_DATA, "realistic": REALISTIC_DATA}


def sized_data(size: int) -> dict[str, Any]:
    """Event data whose JSON is about ``size`` bytes (at least the small event)."""
    if size <= 100:
        return dict(SMALL_DATA)
    return {**SMALL_DATA, "note": "x" * (size - 80)}


def customer_ids() -> Iterator[str]:
    return itertools.cycle(CUSTOMER_IDS)


@dataclass
class Bench:
    sizes: Sizes
    sink: SinkProcess
    #: ``emulator`` (cioguard.testing.FakeCustomerIO) or ``sink`` for the Customer.io rows.
    target: str = "sink"
    only: frozenset[str] = frozenset()
    verbose: bool = True
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        if self.verbose:
            state = "" if row.status == "ok" else f" [{row.status}: {row.note}]"
            print(
                f"  {row.group:<10} {row.name:<48} median {row.median:>12.3f}  p99 {row.p99:>12.3f}"
                f"  {row.unit}{state}",
                file=sys.stderr,
                flush=True,
            )
        return row

    def guard(self, group: str, name: str, unit: str, measure: Callable[[], Row | None]) -> None:
        """Run one row; an exception becomes an ``error`` row (a peer package not installed: ``skipped``)."""
        try:
            row = measure()
        except ImportError as exc:
            self.add(Row.failed(group, name, unit, "skipped", f"{type(exc).__name__}: {exc}"))
        except Exception as exc:
            if self.verbose:
                traceback.print_exc(file=sys.stderr)
            self.add(Row.failed(group, name, unit, "error", f"{type(exc).__name__}: {exc}"))
        else:
            if row is not None:
                self.add(row)

    def wants(self, group: str) -> bool:
        return not self.only or group in self.only
