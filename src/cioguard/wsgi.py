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
by the application is recorded, then re-raised. A plain ``list`` or ``tuple`` response is returned
as is (iterating it runs no code) and recorded at once.

Per request it costs about 0.5 µs: the environ itself marks the request in a ``ContextVar`` and the
:class:`~cioguard.scope.RequestScope` is built (and kept in the environ under
``"cioguard.request_scope"``) only when something asks for it.

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
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from cioguard import blocked
from cioguard.scope import _ASGI_KEY, _current, current_request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from prometheus_client import CollectorRegistry

logger = logging.getLogger("cioguard.wsgi")

__all__ = ["CioGuardMiddleware", "set_route"]

# Bound once: the request path calls them without attribute lookups.
_get_scope = _current.get
_set_scope = _current.set
_reset_scope = _current.reset


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
        # Once per request: one path comparison, a ContextVar get/set/reset, one dict lookup and
        # one deque append. The environ itself marks the request; a RequestScope is built (and
        # stored in the environ) only if something asks (cioguard.scope.current_request).
        if environ.get("PATH_INFO") == self.metrics_path and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            return self._metrics()(environ, start_response)
        if _get_scope() is not None:
            # Nested inside another wrapped app: the outer middleware measures this request.
            return self.app(environ, start_response)
        token = _set_scope(environ)
        try:
            iterable = self.app(environ, start_response)
        except BaseException:
            _tally(environ)
            raise
        finally:
            _reset_scope(token)
        kind = type(iterable)
        if kind is list or kind is tuple:
            # Iterating a plain list runs no code and it has no close(): the request is over.
            _tally(environ)
            return iterable
        file_wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(iterable, file_wrapper):
            # Streaming a file calls no Customer.io code: keep the server's sendfile() path.
            _tally(environ)
            return iterable
        # The scope is closed here, in the context that opened it: servers may iterate and close
        # the response elsewhere. Each iteration step re-enters the same request (its time adds up).
        return _ClosingResponse(iterable, environ)

    def _metrics(self) -> WSGIApplication:
        if self._metrics_app is None:
            from cioguard.metrics import make_wsgi_app

            self._metrics_app = make_wsgi_app(self._registry)
        return self._metrics_app


class _ClosingResponse:
    """Wraps the app's response iterable: each step runs inside the request, close() always runs
    and records the request's blocked time once."""

    __slots__ = ("_closed", "_environ", "_iterable", "_iterator")

    def __init__(self, iterable: Iterable[bytes], environ: MutableMapping[str, Any]) -> None:
        self._iterable = iterable
        self._iterator: Iterator[bytes] | None = None
        self._environ = environ
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = _set_scope(self._environ)
        try:
            if self._iterator is None:
                self._iterator = iter(self._iterable)
            return next(self._iterator)
        finally:
            _reset_scope(token)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close: Callable[[], object] | None = getattr(self._iterable, "close", None)
        try:
            if close is not None:
                close()
        finally:
            _tally(self._environ)


def _tally(environ: MutableMapping[str, Any]) -> None:
    # A deque append, observed in bulk (cioguard.blocked); 0 when no RequestScope was built.
    found = environ.get(_ASGI_KEY)
    blocked.tally(0.0 if found is None else found.blocked_seconds)
