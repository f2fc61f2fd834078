"""The slice of cioguard's public API the benchmarks drive, and helpers to use it row by row.

Rows call only the public contract (``instrument``, ``flush``, ``uninstrument``, ``stats``)::

    with instrumented(track_url=target.track_url, pitfalls="off") as cg:
        client.track("user-1", "order_completed", {})
        cg.flush()
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import CUSTOMER_IDS


def api() -> Any:
    """The ``cioguard`` module (the public API the rows use)."""
    module: Any = importlib.import_module("cioguard")
    return module


@contextmanager
def instrumented(**options: Any) -> Iterator[Any]:
    """``instrument(**options)`` for the ``with`` block, then ``uninstrument()`` (which flushes)."""
    cg = api()
    cg.instrument(**options)
    try:
        yield cg
    finally:
        cg.uninstrument()


def identify_all(client: Any) -> None:
    """Identify every workload customer with an email, so tracking them trips no pitfall rule."""
    for customer_id in CUSTOMER_IDS:
        client.identify(customer_id, email=f"{customer_id}@example.com", created_at=1_700_000_000)


def stat(stats: dict[str, Any], *names: str) -> int:
    """The first of ``names`` present in a ``cioguard.stats()`` dict as an int (sums a dict value)."""
    for name in names:
        value = stats.get(name)
        if isinstance(value, dict):
            return int(sum(v for v in value.values() if isinstance(v, int | float)))
        if isinstance(value, int | float):
            return int(value)
    return 0
