"""wrapt wrapper factories: one per kind of patched SDK function.

Each factory closes over one :class:`~cioguard.instrumentation.runtime.Runtime`. The wrappers are
the only code between the user's call and cioguard, so they follow two rules:

- the documented validation errors (``TypeError``/``ValueError`` naming the field, the SDK's own
  ``CustomerIOException`` for blank ids, a ``PitfallWarning`` in ``pitfalls="error"`` mode) reach
  the caller; any other failure inside cioguard is counted (``stats()["fallbacks"]``, the
  ``customerio_fallback_total`` metric), logged once, and the call falls back to the SDK's own
  behaviour, so a cioguard bug can never lose or break a call;
- nothing else is done on the hot path: the background path is one ``enqueue``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from customerio import APIClient, CustomerIO, CustomerIOException
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from cioguard.endpoints import endpoint_name
from cioguard.instrumentation.express import EVENT_METHODS, PASS_THROUGH, Wrapper, make_express
from cioguard.instrumentation.overrides import sends_itself
from cioguard.operations.endpoints import APP_PREFIXES, TRACK_PREFIXES, mount

__all__ = ["Wrapper", "app_method", "client_constructor", "send_request", "track_method"]
from cioguard.instrumentation.privacy import scrub_sdk_exception
from cioguard.instrumentation.runtime import Runtime, force_synchronous
from cioguard.instrumentation.spans import annotate_sdk_request
from cioguard.telemetry.labels import transport_error_type

logger = logging.getLogger("cioguard")

_PASS_THROUGH = PASS_THROUGH
_logged_failures: set[str] = set()


def _log_internal_failure(where: str) -> None:
    if where not in _logged_failures:
        _logged_failures.add(where)
        logger.exception("cioguard: internal error in %s; the call went through the SDK unchanged", where)


def _fall_back(runtime: Runtime, where: str, method: str) -> None:
    """An internal error sent the call through the blocking SDK: counted (``stats()["fallbacks"]``,
    ``customerio_fallback_total``) every time, logged once per place."""
    try:
        runtime.fallback(method)
    finally:
        _log_internal_failure(where)


def _split_instance(instance: Any, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    # Called through the class (``CustomerIO.track(client, ...)``): wrapt passes instance=None.
    if instance is None and args:
        return args[0], args[1:]
    return instance, args


def track_method(runtime: Runtime, method: str) -> Wrapper:
    """Wrapper for a ``CustomerIO`` Track method: queue it, or run it through in blocking mode."""
    if method in EVENT_METHODS:
        fast = make_express(runtime, method, lambda where, name: _fall_back(runtime, where, name))
        if fast is not None:
            return fast  # track/pageview/backfill in background mode (:mod:`.express`)
    enqueue = runtime.enqueue
    endpoint_for = runtime.track_endpoint_for
    blocking = runtime.blocking
    synchronous = force_synchronous.get

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # The hot path: _split_instance inlined (a call costs as much as the test).
        if instance is None and args:
            client, call_args = args[0], args[1:]
        else:
            client, call_args = instance, args
        if (
            blocking
            or synchronous()
            or (runtime.fork_origin is not None and runtime.held_until_fork())
            or (type(client) is not CustomerIO and sends_itself(type(client)))
        ):
            return runtime.call_through(method, endpoint_for(client), wrapped, args, kwargs, call_args)
        try:
            return enqueue(method, endpoint_for(client), call_args, kwargs)
        except _PASS_THROUGH:
            raise
        except Exception:
            _fall_back(runtime, f"CustomerIO.{method}", method)
            return wrapped(*args, **kwargs)

    return wrapper


def app_method(runtime: Runtime, method: str) -> Wrapper:
    """Wrapper for an ``APIClient.send_*`` method: synchronous unless ``background_transactional``."""
    background = runtime.options.background_transactional and not runtime.blocking

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        client, call_args = _split_instance(instance, args)
        endpoint = runtime.app_endpoint_for(client)
        if not background or force_synchronous.get() or runtime.held_until_fork():
            return runtime.call_through(method, endpoint, wrapped, args, kwargs, call_args)
        try:
            return runtime.enqueue(method, endpoint, call_args, kwargs)
        except _PASS_THROUGH:
            raise
        except Exception:
            _fall_back(runtime, f"APIClient.{method}", method)
            return wrapped(*args, **kwargs)

    return wrapper


def client_constructor(runtime: Runtime, kind: str) -> Wrapper:
    """Wrapper for ``CustomerIO.__init__`` / ``APIClient.__init__`` (CIO001 key shapes, CIO009)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            if kind == "app":
                runtime.observe_client_built("app", key=getattr(instance, "key", None))
            else:
                runtime.observe_client_built(
                    "track",
                    key=getattr(instance, "api_key", None),
                    site_id=getattr(instance, "site_id", None),
                )
        except Warning:
            raise
        except Exception:
            _log_internal_failure(f"{kind} client constructor")
        return result

    return wrapper


def send_request(runtime: Runtime) -> Wrapper:
    """Wrapper for ``ClientBase.send_request``: reroute, time and observe every SDK HTTP exchange."""
    track_url = runtime.options.track_url
    api_url = runtime.options.api_url
    capture_customer_id = runtime.options.capture_customer_id
    recorder = runtime.recorder

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        client, call_args = _split_instance(instance, args)
        http_method, url, data = _bind_send_request(*call_args, **kwargs)
        api = "app" if isinstance(client, APIClient) else "track"
        target = api_url if api == "app" else track_url
        if target is not None:
            url = _reroute(url, target, client, api)
        name = endpoint_name(http_method, url)
        started = time.perf_counter()
        status: int | None = None
        failure: BaseException | None = None
        try:
            with suppress_http_instrumentation():
                response = (
                    wrapped(http_method, url, data)
                    if instance is not None
                    else wrapped(client, http_method, url, data)
                )
            status = int(response.status_code)
            return response
        except CustomerIOException as exc:
            status, failure = _status_from_exception(exc), exc
            if not capture_customer_id:
                scrub_sdk_exception(exc, url, status)  # the caller's logs see no ids or payloads
            raise
        finally:
            if status is None:  # no response: say why (timeout/connection/tls) from the SDK's cause
                recorder.request(name, "error", time.perf_counter() - started, transport_error_type(failure))
            else:
                recorder.request(name, str(status), time.perf_counter() - started)
            if status == 429:
                recorder.rate_limited(name)
            if status is not None:
                # Semconv attributes on the CLIENT span + http.client.request.duration (no ids).
                annotate_sdk_request(http_method, url, status, time.perf_counter() - started)
                runtime.observe_response(api, status)

    return wrapper


def _bind_send_request(method: str, url: str, data: Any) -> tuple[str, str, Any]:
    return method, url, data


def _reroute(url: str, target: str, client: Any, api: str) -> str:
    """``url`` (the SDK's) sent to ``target`` instead: the path after the client's own base (its
    ``url_prefix`` or ``url``) goes after the target's, as background delivery does
    (:func:`cioguard.operations.endpoints.mount`)."""
    own = client.url if api == "app" else client.base_url
    prefixes = APP_PREFIXES if api == "app" else TRACK_PREFIXES
    base = mount(own, () if api == "app" else prefixes) if isinstance(own, str) else ""
    if base and url.startswith(base):
        rest = url[len(base) :]
    else:
        parts = urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return mount(target, prefixes) + rest


def _status_from_exception(exc: CustomerIOException) -> int | None:
    # The SDK formats HTTP failures as "<status>: <url> <payload> <body>"; transport errors differ.
    head = str(exc).split(":", 1)[0]
    return int(head) if head.isdigit() and len(head) == 3 else None
