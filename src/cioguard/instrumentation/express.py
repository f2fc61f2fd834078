"""The caller's fast path for event calls (``track``, ``pageview``, ``backfill``) in background mode.

:meth:`cioguard.instrumentation.runtime.Runtime.enqueue` handles every method and every mode; this
is the same work for the calls applications make most, with nothing else on the way: bind the
arguments (the SDK's errors at the caller's line), validate the name and id, capture the call site
and the trace context, take the JSON snapshot, queue it. The pitfall rules, the check of the
data's ``null`` values and UUID-shaped strings (:mod:`cioguard.pitfalls.values`), the lane, the
ULID and the metrics run on the sender::

    express = make_express(runtime)          # or runtime.enqueue, when it cannot help
    express("track", endpoint, ("42", "purchase"), {"data": {"plan": "pro"}})

Whenever the exact path must decide — the rules must run on the caller (``pitfalls="error"``, a
filter that raises, hides or records warnings), the arguments do not bind, the data is not plain
JSON for orjson, the entry is over the v2 limit, a caller ``id`` is not a string — it hands the
call to ``Runtime.enqueue`` before anything was queued, so both paths queue the same bytes
(tests hold them equal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel_trace

from cioguard.operations.checks import CHECKS, EVENT_NAME_LIMIT
from cioguard.operations.deferred import materialize, snapshot_data
from cioguard.operations.event_args import EVENT_ARGS
from cioguard.operations.model import Call, Endpoint
from cioguard.pitfalls.location import call_site

if TYPE_CHECKING:
    from cioguard.instrumentation.runtime import Runtime

__all__ = ["EVENT_METHODS", "Enqueue", "make_express"]

_MISSING = object()

Enqueue = Callable[[str, Endpoint, tuple[Any, ...], dict[str, Any]], None]
#: The calls this path takes (one v2 ``event``/``page`` entry each).
EVENT_METHODS = frozenset({"track", "pageview", "backfill"})
#: Names this long cannot exceed the byte limit even in 4-byte characters (checks._check_person).
_SHORT_NAME = EVENT_NAME_LIMIT // 4
#: How many calls pass between two CIO011 queue-fill checks (as in Runtime.enqueue).
QUEUE_CHECK_EVERY = 256
#: Calls waiting for the sender's intake from which a snapshot is copied compact (about 4 MB of
#: orjson buffers at most before that; the sender nudged at half a batch takes them in sooner).
COMPACT_AT = 1024


def make_express(runtime: Runtime) -> Enqueue:
    """The fast path for ``runtime``'s event calls (``runtime.enqueue`` when it cannot help)."""
    enqueue = runtime.enqueue
    pitfalls = runtime.pitfalls
    if runtime.blocking or (runtime.pitfalls_on and not pitfalls.may_defer):
        return enqueue  # the rules always run on the caller ("error", fix_timestamps)
    defer = runtime.pitfalls_on
    exact = not defer  # "off": no rules on the sender, so the caller's type walk stays exact
    gate_open = pitfalls.deferral_open
    backlog = pitfalls.backlog
    remember = backlog.waiting.append  # Backlog.add without the call (a deque)
    checks = {method: CHECKS[method] for method in EVENT_METHODS}
    capture = runtime.tracing.capture
    no_explicit = runtime.options.tracer_provider is None
    engine = runtime.engine
    # The local engine takes Snapshot tuples (looked up per call: tests may replace it); the Redis
    # producer takes operations.
    snapshots = callable(getattr(engine, "submit_snapshot", None))
    local: Any = engine
    lanes = runtime.lanes
    clock_ns = time.perf_counter_ns
    until_queue_check = QUEUE_CHECK_EVERY  # calls until the next CIO011 queue-fill check
    wall = time.time

    def express(method: str, endpoint: Endpoint, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        started = clock_ns()
        if defer and not gate_open():
            return enqueue(method, endpoint, args, kwargs)  # the rules must run here, and earlier ones first
        try:
            customer_id, name, data, timestamp, event_id = EVENT_ARGS[method](*args, **kwargs)
        except TypeError:  # binding again raises the SDK's TypeError (or CIO015's) at the caller
            return enqueue(method, endpoint, args, kwargs)
        # The checks' common case inlined (two type tests); anything unusual gets the full check,
        # whose InvalidCall (a ValueError) names the fix.
        if (
            type(name) is not str
            or len(name) > _SHORT_NAME
            or not name.strip()
            or type(customer_id) is not str
            or customer_id == "cio_"
        ):
            checks[method](Call(method, customer_id, name, data, timestamp, event_id))
        # No explicit provider and no global one yet: nothing records spans (tracing.tracer()).
        if no_explicit and getattr(otel_trace, "_TRACER_PROVIDER", _MISSING) is None:
            captured = None
        else:
            captured = capture(method, endpoint, name, customer_id)
        snapshot = snapshot_data(method, customer_id, name, data, timestamp, event_id, exact)
        if snapshot is None:  # build()'s exact path decides (and raises what it must)
            return enqueue(method, endpoint, args, kwargs)
        data_json, value, stamp = snapshot
        if snapshots and len(local.inbox) >= COMPACT_AT:
            # orjson's result keeps a 4 KB buffer alive until the sender takes the call in (it
            # joins the entry then): while the sender lags, keep a compact copy instead.
            data_json = bytes(memoryview(data_json))
        if defer:
            nonlocal until_queue_check
            until_queue_check -= 1
            if until_queue_check <= 0:
                until_queue_check = QUEUE_CHECK_EVERY
                runtime._check_queue()  # CIO011, a warning here ("warn" mode)
            # One tuple, queued before the operation: the sender runs it (in call order) before it
            # completes any later operation. The data's JSON: the sender looks behind its null values and
            # UUID-shaped strings (an inf, a UUID object). The call site is the wrapper's caller.
            where = call_site(2)
            remember(
                (pitfalls, method, customer_id, name, data, timestamp, event_id, where, captured, data_json)
            )
        # Whole microseconds, an int: below 257 µs CPython shares it, so no float per queued call.
        elapsed_us = (clock_ns() - started) // 1000
        if captured is not None:
            captured.caller_seconds = elapsed_us / 1e6
        # A Snapshot tuple: the sender makes its Operation at intake (fewer objects here).
        item = (
            endpoint,
            method,
            data_json,
            value,
            event_id,
            wall(),
            captured,
            elapsed_us,
            lanes,
            name,
            stamp,
        )
        accepted = local.submit_snapshot(item) if snapshots else engine.submit(materialize(item))
        if not accepted and defer:
            backlog.drain()  # dropped at the door: its rules still run (and count)
        return None

    return express
