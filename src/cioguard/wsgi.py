"""WSGI middleware: request scopes, blocked-time metric and ``/metrics`` for Flask, Django, any WSGI app.

::

    import cioguard
    from cioguard.wsgi import CioGuardMiddleware

    cioguard.instrument()
    flask_app.wsgi_app = CioGuardMiddleware(flask_app.wsgi_app)          # Flask
    application = CioGuardMiddleware(get_wsgi_application())            # Django wsgi.py

For every request the middleware opens a :func:`cioguard.scope.request_scope` (read by the pitfall
rules CIO007 and CIO009) and records the seconds the request spent blocked in Customer.io calls in
``customerio_http_request_blocked_seconds`` — for every request, 0 included, once the response is
closed. Time spent while the server iterates a streaming response counts too. The response
iterable's ``close()`` is always called (PEP 3333), also when iteration fails; an exception raised
by the application is recorded, then re-raised.

WSGI carries no route template, so the scope's ``route`` starts as ``None``; tell cioguard the template
from your framework with :func:`set_route` (never the raw path)::

    @flask_app.before_request
    def _cioguard_route() -> None:
        if request.url_rule is not None:
            cioguard.wsgi.set_route(request.url_rule.rule)

Prometheus metrics are served at ``metrics_path`` (``None`` turns that off). Under gunicorn with
several workers, set ``PROMETHEUS_MULTIPROC_DIR`` and see ``examples/gunicorn.conf.py``.

There is no WSGI shutdown signal: pending operations are delivered at process exit by cioguard's
exit handling (bounded by the ``exit_timeout`` option). Under gunicorn you may also call
``cioguard.flush(timeout=5)`` from the ``worker_exit`` hook, as the example configuration does. Nothing
here stops cioguard: only an explicit ``cioguard.shutdown()`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from cioguard.blocked import record as record_blocked
from cioguard.scope import RequestScope, current_request, enter, leave

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from prometheus_client import CollectorRegistry

logger = logging.getLogger("cioguard.wsgi")

__all__ = ["CioGuardMiddleware", "set_route"]


def set_route(template: str) -> None:
    """Record the route template of the request being served (no-op outside a request scope)."""
    scope = current_request()
    if scope is not None:
        scope.route = template


class CioGuardMiddleware:
    """WSGI middleware for cioguard (see the module docstring).

    Args:
        app: the WSGI application to wrap.
        metrics_path: where to serve Prometheus metrics (default ``/metrics``); ``None`` to not serve.
        registry: the ``prometheus_client`` registry to serve (default: the process registry, or every
            worker's files in multiprocess mode); pass the one given to ``instrument(registry=...)``.
        metrics_app: the WSGI app serving metrics (default ``cioguard.metrics.make_wsgi_app(registry)``,
            built on the first scrape).
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        metrics_path: str | None = "/metrics",
        registry: CollectorRegistry | None = None,
        metrics_app: WSGIApplication | None = None,
    ) -> None:
        if metrics_path is not None and not metrics_path.startswith("/"):
            raise ValueError("CioGuardMiddleware: metrics_path must start with '/' (or be None)")
        self.app = app
        self.metrics_path = metrics_path
        self._registry = registry
        self._metrics_app = metrics_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", ""))
        if (
            self.metrics_path is not None
            and method in ("GET", "HEAD")
            and environ.get("PATH_INFO") == self.metrics_path
        ):
            return self._metrics()(environ, start_response)
        if current_request() is not None:
            # Nested inside another wrapped app: the outer middleware measures this request.
            return self.app(environ, start_response)
        # enter/leave rather than a context manager: this runs once per request.
        current = RequestScope(method)
        token = enter(current)
        try:
            iterable = self.app(environ, start_response)
        except BaseException:
            _record_blocked(current.blocked_seconds)
            raise
        finally:
            leave(token)
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(iterable, file_wrapper):
            # Streaming a file calls no Customer.io code: keep the server's sendfile() path.
            _record_blocked(current.blocked_seconds)
            return iterable
        # The scope is closed here, in the context that opened it: servers may iterate and close
        # the response elsewhere. Iteration gets scopes of its own whose time is added up.
        return _ClosingResponse(iterable, method, current.route, current.blocked_seconds)

    def _metrics(self) -> WSGIApplication:
        if self._metrics_app is None:
            from cioguard.metrics import make_wsgi_app

            self._metrics_app = make_wsgi_app(self._registry)
        return self._metrics_app


class _ClosingResponse:
    """Wraps the app's response iterable: times each step, always closes it, records once at close."""

    def __init__(self, iterable: Iterable[bytes], method: str, route: str | None, blocked: float) -> None:
        self._iterable = iterable
        self._iterator: Iterator[bytes] | None = None
        self._method = method
        self._route = route
        self._blocked = blocked
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._iterable)
        current = RequestScope(self._method, self._route)
        token = enter(current)
        try:
            return next(self._iterator)
        finally:
            leave(token)
            self._blocked += current.blocked_seconds

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close: Callable[[], object] | None = getattr(self._iterable, "close", None)
        try:
            if close is not None:
                close()
        finally:
            _record_blocked(self._blocked)


def _record_blocked(seconds: float) -> None:
    record_blocked(seconds)  # a deque append; observed in bulk (cioguard.blocked)
