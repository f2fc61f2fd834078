"""Pure ASGI middleware: request scopes, blocked-time metric, ``/metrics`` and flush on shutdown.

Wrap any ASGI application (Starlette, FastAPI, Quart, Django ASGI…)::

    import cioguard
    from cioguard.asgi import CioGuardMiddleware

    cioguard.instrument()
    app = CioGuardMiddleware(app)                          # plain ASGI
    app.add_middleware(CioGuardMiddleware)                 # Starlette / FastAPI

For every HTTP request the middleware

* opens a request scope (:class:`cioguard.scope.RequestScope`) with the method and, once the
  framework has routed the request, its route *template*: Starlette and FastAPI store the matched route in
  ``scope["route"]``, which the request scope reads when a pitfall rule asks (the ASGI scope dict is
  passed on as is, never copied). The raw path is never used. The pitfall rules read the scope:
  CIO007 (a Customer.io call blocked the request) and CIO009 (a client built per request);
* records the seconds the request spent blocked inside Customer.io calls in
  ``customerio_http_request_blocked_seconds`` — for *every* request, including 0, so the histogram
  shows which fraction of requests blocked at all; exceptions are recorded, then re-raised. Values
  are tallied and observed in bulk (:mod:`cioguard.blocked`: at each scrape, at least once a second);
* costs about 0.5 µs per request: the ASGI scope dict itself marks the request in a ``ContextVar``
  (get, set, reset), the :class:`~cioguard.scope.RequestScope` is built only when something asks
  for it, the ``/metrics`` check is one string comparison and the blocked time one deque append;
* serves Prometheus metrics at ``metrics_path`` (``None`` turns that off), below the ``root_path``
  when the server sets one (``uvicorn --root-path /api``: ``/api/metrics``);
* on ASGI ``lifespan`` shutdown, after the application's own shutdown handlers ran (they may still
  send events), calls ``cioguard.flush(shutdown_timeout)`` in a separate thread so the event loop
  keeps running, and waits for it at most ``shutdown_timeout`` (+1 s). An application that does not
  implement lifespan gets it implemented for it, so the flush still happens. A server run without
  lifespan (``uvicorn --lifespan off``) never announces shutdown: then the delivery engine's
  ``atexit`` flush (``exit_timeout``) is what delivers.

Lifespan shutdown only *flushes*: cioguard keeps running, so a test suite that enters the app's
lifespan once per test (``with TestClient(app):``) delivers every test's events, and so does code
that runs after the server stopped. Only an explicit ``cioguard.shutdown()`` stops the sender.

``websocket`` and other scope types pass through untouched. The middleware is a plain ASGI class,
not ``BaseHTTPMiddleware``, so ``contextvars`` (the request scope, OpenTelemetry context) reach the
endpoint. Thread offloading uses asyncio; run it under an asyncio server (uvicorn, hypercorn, daphne).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from cioguard import blocked
from cioguard.scope import _ASGI_KEY, _current, asgi_route_template
from cioguard.threads import daemon_thread

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("cioguard.asgi")

__all__ = ["ASGIApp", "CioGuardMiddleware", "Message", "Receive", "Scope", "Send", "route_template"]


#: The matched route's template from ``scope["route"]`` (kept here for existing imports).
route_template = asgi_route_template

# Bound once: the request path calls them without attribute lookups.
_get_scope = _current.get
_set_scope = _current.set
_reset_scope = _current.reset


def _default_flush(timeout: float) -> None:
    import cioguard

    # flush, never shutdown: a lifespan ends many times per process (TestClient blocks, reloads).
    cioguard.flush(timeout=timeout)


class CioGuardMiddleware:
    """Pure ASGI middleware for cioguard (see the module docstring).

    Args:
        app: the ASGI application to wrap.
        metrics_path: where to serve Prometheus metrics (default ``/metrics``); ``None`` to not serve.
        flush_on_shutdown: deliver pending operations on lifespan shutdown (default ``True``).
        shutdown_timeout: the most seconds shutdown may wait for delivery (default 5.0).
        registry: the ``prometheus_client`` registry to serve (default: the process registry, or every
            worker's files in multiprocess mode); pass the one given to ``instrument(registry=...)``.
        metrics_app: the ASGI app serving metrics (default ``cioguard.metrics.make_asgi_app(registry)``,
            built on the first scrape).
        shutdown: the blocking function called with the timeout on lifespan shutdown (default
            ``cioguard.flush``: cioguard keeps running); injectable for tests.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics_path: str | None = "/metrics",
        flush_on_shutdown: bool = True,
        shutdown_timeout: float = 5.0,
        registry: CollectorRegistry | None = None,
        metrics_app: ASGIApp | None = None,
        shutdown: Callable[[float], object] | None = None,
    ) -> None:
        if shutdown_timeout < 0:
            raise ValueError("CioGuardMiddleware: shutdown_timeout must be >= 0")
        if metrics_path is not None and not metrics_path.startswith("/"):
            raise ValueError("CioGuardMiddleware: metrics_path must start with '/' (or be None)")
        self.app = app
        self.metrics_path = metrics_path
        self.flush_on_shutdown = flush_on_shutdown
        self.shutdown_timeout = float(shutdown_timeout)
        self._registry = registry
        self._metrics_app = metrics_app
        self._shutdown = shutdown or _default_flush

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The HTTP branch runs once per request (benchmarks/middleware.py): one path comparison, a
        # ContextVar get/set/reset, one dict lookup and one deque append. No closure, no wrapped
        # send, no copy of the scope or the context, no RequestScope unless something asks.
        if scope["type"] == "http":
            path = scope.get("path")
            if (path == self.metrics_path or scope.get("root_path")) and self._is_metrics(scope):
                await self._metrics(scope, receive, send)
                return
            if _get_scope() is not None:
                # Already inside a request scope (the middleware wraps a sub-app of a wrapped app):
                # the outer one measures this request; a second scope would count it twice.
                await self.app(scope, receive, send)
                return
            # The scope dict itself is the marker: a RequestScope is built only if something asks.
            token = _set_scope(scope)
            try:
                await self.app(scope, receive, send)
            finally:
                # Recorded for every request (0 included), also when the app raised.
                _reset_scope(token)
                blocked.tally(scope[_ASGI_KEY].blocked_seconds if _ASGI_KEY in scope else 0.0)
        elif scope["type"] == "lifespan" and self.flush_on_shutdown:
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- HTTP ----------------------------------------------------------------------------------

    def _is_metrics(self, scope: Scope) -> bool:
        # Reached for a request to metrics_path, or for every request when the server sets a
        # root_path (the path then includes it): the cheapest test first.
        path = scope.get("path")
        metrics_path = self.metrics_path
        if (
            metrics_path is None
            or not isinstance(path, str)
            or not path.endswith(metrics_path)
            or scope.get("method") not in ("GET", "HEAD")
        ):
            return False
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        return path == self.metrics_path

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._metrics_app is None:
            from cioguard.metrics import make_asgi_app

            self._metrics_app = make_asgi_app(self._registry)
        await self._metrics_app(scope, receive, send)

    # -- lifespan ------------------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"received": False, "shutdown": False, "drained": False}

        async def receive_wrapper() -> Message:
            message = await receive()
            state["received"] = True
            if message["type"] == "lifespan.shutdown":
                state["shutdown"] = True
            return message

        async def send_wrapper(message: Message) -> None:
            # Drain after the app's own shutdown handlers (which may send events), before the
            # server is told shutdown is complete and tears the process down.
            if (
                state["shutdown"]
                and not state["drained"]
                and message["type"].startswith("lifespan.shutdown.")
            ):
                state["drained"] = True
                await self._drain()
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if state["received"]:
                raise
            # The app raised before reading any lifespan message: it does not support lifespan
            # (servers then disable it). Serve the protocol ourselves so the flush still runs.
            logger.debug("cioguard.asgi: application does not support lifespan; handling it", exc_info=True)
            await self._own_lifespan(receive, send)
            return
        if not state["received"]:
            # The app returned without reading a lifespan message (``if scope["type"] != "http":
            # return``): it ignores lifespan. Serve the protocol ourselves so SIGTERM still flushes.
            await self._own_lifespan(receive, send)
            return
        if state["shutdown"] and not state["drained"]:
            state["drained"] = True
            await self._drain()

    async def _own_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _drain(self) -> None:
        """Run the blocking shutdown in a daemon thread; wait at most ``shutdown_timeout`` + 1 s."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def resolve(_: object = None) -> None:
            if not finished.done():
                finished.set_result(None)

        def run() -> None:
            try:
                self._shutdown(self.shutdown_timeout)
            except Exception:
                logger.exception("cioguard.asgi: shutdown failed")
            finally:
                # The loop may already be closed if the server gave up waiting.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(resolve)

        # A daemon thread, not the default executor: a hung delivery must not keep the process
        # alive past the deadline (asyncio.run joins executor threads on exit).
        daemon_thread(run, "cioguard-asgi-shutdown").start()
        try:
            await asyncio.wait_for(asyncio.shield(finished), self.shutdown_timeout + 1.0)
        except asyncio.TimeoutError:
            logger.warning("cioguard.asgi: shutdown did not finish within %.1f s", self.shutdown_timeout)
