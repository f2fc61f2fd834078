"""The SDK's own retries, observed: 429s, ``Retry-After`` waits and 5xx resends inside one call.

The ``customerio`` SDK sends through a ``requests`` session whose adapter retries with urllib3's
``Retry`` (5xx, and a 429 carrying ``Retry-After``, which it sleeps out). Those attempts happen
inside ``ClientBase.send_request``, below the wrapper that times the call, which sees only the last
response: in blocking mode, inside ``cioguard.synchronous()`` and for App API sends, a 429 and its
wait or three 503s left no trace. The session the SDK builds gets an :class:`ObservedRetry`
instead, which reports each failed attempt before urllib3 decides what to do with it::

    wrap_function_wrapper(ClientBase, "_build_session", session_wrapper(runtime))

Each one counts ``customerio_retries_total{reason}`` (and ``customerio_rate_limited_total`` for a
429, with CIO011 counted and logged once — never raised, it is found inside urllib3); the final
response is still recorded by the ``send_request`` wrapper. Never raises into the SDK.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from customerio import APIClient
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from cioguard.delivery.policy import retry_reason
from cioguard.delivery.wire import endpoint_name

if TYPE_CHECKING:
    from cioguard.instrumentation.runtime import Runtime

logger = logging.getLogger("cioguard")

__all__ = ["ObservedRetry", "session_wrapper"]

#: ``observe(http_method, url, status, error)`` for one failed attempt.
Observer = Callable[[str, str, "int | None", "BaseException | None"], None]


class ObservedRetry(Retry):
    """urllib3's ``Retry`` that tells ``observe`` of every failed attempt (copies keep it)."""

    observe: Observer | None = None

    @classmethod
    def of(cls, retry: Retry, observe: Observer) -> ObservedRetry:
        """A copy of ``retry`` (every setting the SDK chose) that tells ``observe``."""
        observed = copy.copy(retry)
        observed.__class__ = cls  # (same layout: Retry adds no slots)
        result = cast(ObservedRetry, observed)
        result.observe = observe
        return result

    def new(self, **kw: Any) -> ObservedRetry:
        retry = super().new(**kw)
        retry.observe = self.observe
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> ObservedRetry:
        observe = self.observe
        if observe is not None:
            try:
                observe(method or "POST", url or "", getattr(response, "status", None), error)
            except Exception:  # observing never changes what the SDK does
                logger.debug("cioguard: observing an SDK retry failed", exc_info=True)
        return super().increment(method, url, response, error, _pool, _stacktrace)


def session_wrapper(runtime: Runtime) -> Callable[..., Any]:
    """A wrapt wrapper for ``ClientBase._build_session``: its adapters retry with :class:`ObservedRetry`."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        session = wrapped(*args, **kwargs)
        try:
            api = "app" if isinstance(instance, APIClient) else "track"
            observe = _observer(runtime, api)
            for adapter in getattr(session, "adapters", {}).values():
                retry = getattr(adapter, "max_retries", None)
                if type(retry) is Retry:
                    adapter.max_retries = ObservedRetry.of(retry, observe)
        except Exception:
            logger.debug("cioguard: could not observe the SDK's retries", exc_info=True)
        return session

    return wrapper


def _observer(runtime: Runtime, api: str) -> Observer:
    recorder = runtime.recorder

    def observe(http_method: str, url: str, status: int | None, error: BaseException | None) -> None:
        if runtime.stopped:
            return  # a session built before uninstrument(): nothing of ours to report to
        name = endpoint_name(http_method, urlsplit(url).path)
        kind = "timeout" if isinstance(error, Urllib3Timeout) else "connection"
        recorder.retry(name, retry_reason(status, None if status is not None else kind))
        if status == 429:
            recorder.rate_limited(name)
            if runtime.pitfalls_on:  # CIO011: counted and logged once, never raised in urllib3
                runtime.pitfalls.report(runtime.pitfalls.check_response(api=api, status_code=429))

    return observe
