"""The caller's fast path for event calls (``track``, ``pageview``, ``backfill``) in background mode.

:meth:`cioguard.instrumentation.runtime.Runtime.enqueue` handles every method and every mode; this
is the same work for the calls applications make most, in the wrapt wrapper itself, with nothing
else on the way: bind the arguments (the SDK's errors at the caller's line), validate the name and
id, capture the call site and the trace context, take the JSON snapshot of the data, queue it. The
pitfall rules, the check of the data's ``null`` values and UUID-shaped strings
(:mod:`cioguard.pitfalls.values`), the v2 entry, the lane, the ULID and the metrics run on the
sender::

    wrapper = make_express(runtime, "track", fall_back)   # None when it cannot help
    wrapt.wrap_function_wrapper(CustomerIO, "track", wrapper)

Whenever the exact path must decide — the rules must run on the caller (``pitfalls="error"``, a
filter that raises, hides or records warnings), the arguments do not bind, the data is not plain
JSON for orjson, the entry may pass the v2 limit, a name or caller ``id`` is not a string — it
hands the call to ``Runtime.enqueue`` before anything was queued, so both paths queue the same
bytes (tests hold them equal). An internal error sends the call through the SDK (``fall_back``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from customerio import CustomerIO, CustomerIOException
from opentelemetry import trace as otel_trace

from cioguard.instrumentation.overrides import sends_itself
from cioguard.operations.checks import CHECKS, EVENT_NAME_LIMIT
from cioguard.operations.deferred import materialize
from cioguard.operations.entry import snapshot_data
from cioguard.operations.event_args import EVENT_ARGS
from cioguard.operations.model import Call
from cioguard.pitfalls.location import call_site

if TYPE_CHECKING:
    from cioguard.instrumentation.runtime import Runtime

__all__ = ["EVENT_METHODS", "PASS_THROUGH", "FallBack", "Wrapper", "make_express"]

_MISSING = object()

#: A wrapt wrapper: ``(wrapped, instance, args, kwargs) -> result``.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
#: Counts and logs an internal failure (``where``, ``method``) before the call goes to the SDK.
FallBack = Callable[[str, str], None]
#: What reaches the caller from a wrapper: the documented validation errors (and warnings).
PASS_THROUGH = (TypeError, ValueError, CustomerIOException, Warning)
#: The calls this path takes (one v2 ``event``/``page`` entry each).
EVENT_METHODS = frozenset({"track", "pageview", "backfill"})
#: Names this long cannot exceed the byte limit even in 4-byte characters (checks._check_person).
_SHORT_NAME = EVENT_NAME_LIMIT // 4
#: How many calls pass between two CIO011 queue-fill checks (as in Runtime.enqueue).
QUEUE_CHECK_EVERY = 256
#: Calls waiting for the sender's intake from which a snapshot is copied compact. Invariant: at
#: most this many orjson results (each holding a 4 KB buffer) wait in the inbox, about 256 KB;
#: a sender waiting for a partial batch or for held requests may leave calls there for a second.
COMPACT_AT = 64


def make_express(runtime: Runtime, method: str, fall_back: FallBack) -> Wrapper | None:
    """The wrapt wrapper of ``runtime``'s ``method`` (an event call) on the fast path, or None when
    the fast path cannot help (blocking mode; rules that must run on the caller)."""
    enqueue = runtime.enqueue
    pitfalls = runtime.pitfalls
    if runtime.blocking or (runtime.pitfalls_on and not pitfalls.may_defer):
        return None  # the rules always run on the caller ("error", fix_timestamps)
    defer = runtime.pitfalls_on
    exact = not defer  # "off": no rules on the sender, so the caller's type walk stays exact
    gate_open = pitfalls.deferral_open
    backlog = pitfalls.backlog
    remember = backlog.waiting.append  # Backlog.add without the call (a deque)
    check = CHECKS[method]
    bind = EVENT_ARGS[method]
    capture = runtime.tracing.capture
    no_explicit = runtime.options.tracer_provider is None
    engine = runtime.engine
    # The local engine takes Snapshot tuples; the Redis producer takes operations.
    snapshots = callable(getattr(engine, "submit_snapshot", None))
    local: Any = engine
    lanes = runtime.lanes
    endpoint_for = runtime.track_endpoint_for
    from cioguard.instrumentation.runtime import force_synchronous  # (runtime imports this module)

    synchronous = force_synchronous.get
    clock_ns = time.perf_counter_ns
    until_queue_check = QUEUE_CHECK_EVERY  # calls until the next CIO011 queue-fill check
    wall = time.time
    where_failed = f"CustomerIO.{method}"

    def express(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        started = clock_ns()
        # Called through the class (``CustomerIO.track(client, ...)``): wrapt passes instance=None.
        if instance is None and args:
            client, call_args = args[0], args[1:]
        else:
            client, call_args = instance, args
        endpoint = endpoint_for(client)
        if (
            synchronous()
            or (runtime.fork_origin is not None and runtime.held_until_fork())
            or (type(client) is not CustomerIO and sends_itself(type(client)))
        ):
            return runtime.call_through(method, endpoint, wrapped, args, kwargs, call_args)
        try:
            if defer and not gate_open():
                return enqueue(method, endpoint, call_args, kwargs)  # the rules run here, earlier ones first
            try:
                customer_id, name, data, timestamp, event_id = bind(*call_args, **kwargs)
            except TypeError:  # binding again raises the SDK's TypeError (or CIO015's) at the caller
                return enqueue(method, endpoint, call_args, kwargs)
            # The checks' common case inlined (two type tests); anything unusual gets the full check,
            # whose InvalidCall (a ValueError) names the fix.
            if (
                type(name) is not str
                or len(name) > _SHORT_NAME
                or not name.strip()
                or type(customer_id) is not str
                or customer_id == "cio_"
            ):
                check(Call(method, customer_id, name, data, timestamp, event_id))
            # No explicit provider and no global one yet: nothing records spans (tracing.tracer()).
            if no_explicit and getattr(otel_trace, "_TRACER_PROVIDER", _MISSING) is None:
                captured = None
            else:
                captured = capture(method, endpoint, name, customer_id)
            snapshot = snapshot_data(method, customer_id, name, data, timestamp, event_id, exact)
            if snapshot is None:  # build()'s exact path decides (and raises what it must)
                return enqueue(method, endpoint, call_args, kwargs)
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
                where = call_site(1)
                remember(
                    (
                        pitfalls,
                        method,
                        customer_id,
                        name,
                        data,
                        timestamp,
                        event_id,
                        where,
                        captured,
                        data_json,
                    )
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
        except PASS_THROUGH:
            raise
        except Exception:
            fall_back(where_failed, method)
            return wrapped(*args, **kwargs)

    return express
