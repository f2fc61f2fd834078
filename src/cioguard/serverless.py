"""Deliver before a serverless handler returns (AWS Lambda, and anything shaped like it).

::

    import cioguard
    from cioguard.serverless import handler

    cioguard.instrument()

    @handler
    def lambda_handler(event, context):
        cio.track(event["user_id"], "order_placed")
        return {"statusCode": 200}

    @handler(safety_margin=1.0, timeout=2.0)
    async def async_handler(event, context): ...

The platform freezes the process as soon as the handler returns: queued operations would wait for
the next invocation, or be lost with the instance. The decorator flushes after the handler —
returned or raised — for at most ``timeout`` seconds (default: the ``exit_timeout`` option) and
never past ``context.get_remaining_time_in_millis()`` minus ``safety_margin`` seconds (default
0.5), so cioguard cannot make the function time out. It never changes the result and never raises:
the handler's own exception is re-raised unchanged. Without a context (a test, another platform)
only ``timeout`` bounds the flush. Async handlers flush in a worker thread, so the event loop stays
free. What the flush could not deliver stays queued (logged) and goes out on a later invocation of
the same instance.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from cioguard.instrumentation.freeze import mark_decorated
from cioguard.instrumentation.instrumentor import active_runtime

logger = logging.getLogger("cioguard")

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds left to the platform after the flush (it still has to send the response).
DEFAULT_SAFETY_MARGIN = 0.5


@overload
def handler(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def handler(
    *, safety_margin: float = DEFAULT_SAFETY_MARGIN, timeout: float | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def handler(
    func: Callable[P, R] | None = None,
    /,
    *,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
    timeout: float | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a ``(event, context)`` handler, sync or ``async``, to flush before it returns.

    ``safety_margin`` and ``timeout`` are seconds; a negative or NaN value raises ``ValueError``
    here, at decoration time.
    """
    _check("safety_margin", safety_margin)
    if timeout is not None:
        _check("timeout", timeout)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        mark_decorated()
        if inspect.iscoroutinefunction(fn):
            return _wrap_async(fn, safety_margin, timeout)  # type: ignore[return-value]
        return _wrap_sync(fn, safety_margin, timeout)

    return decorate if func is None else decorate(func)


def _check(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0:
        raise ValueError(
            f"cioguard.serverless.handler: {name} must be a number of seconds >= 0, got {value!r}"
        )


def _wrap_sync(fn: Callable[P, R], margin: float, timeout: float | None) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            _flush(_budget(args, kwargs, margin, timeout))  # neither raises

    return wrapper


def _wrap_async(
    fn: Callable[P, Awaitable[R]], margin: float, timeout: float | None
) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        finally:
            budget = _budget(args, kwargs, margin, timeout)
            if budget > 0:
                await asyncio.to_thread(_flush, budget)
            else:
                _flush(budget)  # (only logs what stays queued: no time to deliver it)

    return wrapper


def _budget(args: tuple[Any, ...], kwargs: Mapping[str, Any], margin: float, timeout: float | None) -> float:
    """Seconds the flush may take: ``timeout`` (or ``exit_timeout``), capped by the time left."""
    try:
        return _time_left(args, kwargs, margin, timeout)
    except Exception as exc:  # never raise into the handler's caller
        logger.error("cioguard: could not size the flush after the handler: %r", exc)
        return 0.0


def _time_left(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], margin: float, timeout: float | None
) -> float:
    runtime = active_runtime()
    if runtime is None or runtime.stopped:
        return 0.0
    budget = runtime.options.exit_timeout if timeout is None else timeout
    # Lambda passes (event, context); a method handler or keyword call moves the context.
    remaining = next(
        (found for found in map(_remaining_of, (*args, *kwargs.values())) if found is not None), None
    )
    if remaining is not None:
        try:
            left = float(remaining()) / 1000.0 - margin
        except Exception:  # a context that cannot tell: only the timeout bounds the flush
            left = budget
        if not math.isnan(left):
            budget = min(budget, left)
    return max(0.0, budget)


def _remaining_of(value: Any) -> Callable[[], Any] | None:
    method = getattr(value, "get_remaining_time_in_millis", None)
    return method if callable(method) else None


def _flush(budget: float) -> None:
    """Flush within ``budget`` seconds; log what stays queued. Never raises."""
    try:
        runtime = active_runtime()
        if runtime is None or runtime.stopped:
            return
        if budget <= 0:
            queued = runtime.stats().get("queue_size", 0)
            if queued:
                logger.warning(
                    "cioguard: no time left to deliver before the handler returned (remaining time "
                    "under the safety margin, or a timeout of 0); %d operation(s) stay queued for a "
                    "later invocation",
                    queued,
                )
            return
        if not runtime.flush(budget):
            logger.warning(
                "cioguard: not everything was delivered within %.2f s before the handler returned; "
                "the rest stays queued for a later invocation",
                budget,
            )
    except Exception as exc:  # the handler's outcome is never changed by cioguard
        logger.error("cioguard: flush after the handler failed: %r", exc)
