"""Floor rows: what a call costs before any Customer.io work is done.

- a bare function call with the SDK's ``track`` signature;
- ``collections.deque.append`` of the call's arguments (the cheapest possible "enqueue");
- a bare ``wrapt`` wrapper around a method (what patching alone costs);
- a ``wrapt`` wrapper that appends to a deque (the minimum any wrapt-based background design pays):
  **the floor** every caller-cost row is compared to (``x floor``).

Every caller-cost row in the run also pays for cycling through the customer ids, so the floors
include it too. The payload does not matter here (nothing reads it); the realistic one is passed.
"""

from __future__ import annotations

import collections
from typing import Any

import wrapt

from benchmarks.harness import EVENT_NAME, REALISTIC_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.timing import per_call

GROUP = "floor"


class _Target:
    """A stand-in with the SDK's ``track`` signature that does nothing."""

    def track(
        self, customer_id: Any, name: Any, data: Any = None, id: Any = None, timestamp: Any = None
    ) -> None:
        return None


def _passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def run(bench: Bench) -> None:
    budget = bench.sizes.caller
    ids = customer_ids()

    def bare() -> Row:
        target = _Target()
        return Row.caller(
            GROUP,
            "bare function call",
            per_call(lambda: target.track(next(ids), EVENT_NAME, REALISTIC_DATA), budget),
        )

    def append() -> Row:
        queue: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=100_000)
        push = queue.append
        return Row.caller(
            GROUP, "deque.append", per_call(lambda: push((next(ids), EVENT_NAME, REALISTIC_DATA)), budget)
        )

    def wrapped() -> Row:
        cls = type("Wrapped", (_Target,), {})
        wrapt.wrap_function_wrapper(cls, "track", _passthrough)
        target = cls()
        return Row.caller(
            GROUP,
            "bare wrapt wrapper",
            per_call(lambda: target.track(next(ids), EVENT_NAME, REALISTIC_DATA), budget),
        )

    def wrapped_append() -> Row:
        queue: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=100_000)
        push = queue.append

        def enqueue(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
            push((args, kwargs))

        cls = type("Queued", (_Target,), {})
        wrapt.wrap_function_wrapper(cls, "track", enqueue)
        target = cls()
        return Row.caller(
            GROUP,
            "wrapt wrapper + deque.append",
            per_call(lambda: target.track(next(ids), EVENT_NAME, REALISTIC_DATA), budget),
        )

    for name, measure in [
        ("bare function call", bare),
        ("deque.append", append),
        ("bare wrapt wrapper", wrapped),
        ("wrapt wrapper + deque.append", wrapped_append),
    ]:
        bench.guard(GROUP, name, "us/call", measure)
