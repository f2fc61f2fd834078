"""Serve cioguard's Prometheus metrics: ``/metrics`` as an ASGI or WSGI app.

ASGI (Starlette, FastAPI, any ASGI server)::

    from cioguard.metrics import make_asgi_app
    app.mount("/metrics", make_asgi_app())

WSGI (Flask, Django, gunicorn)::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from cioguard.metrics import make_wsgi_app
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app()})

Both apps answer ``GET``/``HEAD`` with the text format (OpenMetrics when the scraper asks for
it), gzip the body when the client accepts gzip, honour ``?name[]=`` filters, answer ``OPTIONS``
and reject other methods with 405. Unlike prometheus_client's own ASGI app, the ASGI app
completes the ``lifespan`` protocol (so it can be the root app or sit under a dispatcher, see
prometheus/client_python#855), closes websockets politely, ignores other scope types, and builds
the exposition in a worker thread so a large multiprocess merge never blocks the event loop.

Multiprocess mode (gunicorn, uvicorn ``--workers``) — three rules:

1. Set ``PROMETHEUS_MULTIPROC_DIR`` in the environment *before* the Python process starts (or at
   least before anything imports ``prometheus_client``): prometheus_client picks its value
   storage at import time, so setting it later silently gives per-process numbers.
2. Wipe the directory before starting the server (``rm -rf "$DIR"; mkdir -p "$DIR"``): files of
   earlier runs would otherwise be merged into the new run's counters.
3. With gunicorn, mark dead workers so their live gauges disappear — in ``gunicorn.conf.py``::

       from cioguard.metrics import child_exit   # noqa: F401  (gunicorn calls it by name)

When the variable is set and no ``registry`` is given, each scrape builds a fresh
``CollectorRegistry`` with a ``MultiProcessCollector`` reading every worker's files (the pattern
prometheus_client documents). Counters of dead workers are kept (they must never go backwards).
Gauges: ``customerio_queue_size`` and ``customerio_spool_operations`` are summed over live
workers; ``customerio_queue_capacity`` has one series per live worker (``pid`` label) — sum it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import RestrictedRegistry

from cioguard.blocked import drain as drain_blocked

__all__ = ["child_exit", "exposition", "make_asgi_app", "make_wsgi_app", "multiprocess_dir"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_ALLOW = "GET, HEAD, OPTIONS"
#: Bodies smaller than this are sent uncompressed (gzip would not pay for itself).
GZIP_MIN_BYTES = 256


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` (or the legacy ``prometheus_multiproc_dir``), if set."""
    legacy = "prometheus_multiproc_dir"  # still read by prometheus_client, with a deprecation warning
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(legacy) or None


def _scrape_registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    from prometheus_client import multiprocess

    # A fresh registry per scrape: MultiProcessCollector reads every worker's files each time.
    fresh = CollectorRegistry()
    multiprocess.MultiProcessCollector(fresh, path=path)  # type: ignore[no-untyped-call]
    return fresh


def exposition(
    registry: CollectorRegistry | None, accept: str, accept_encoding: str, query: str
) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of one scrape (blocking; the apps call it, tests and custom servers may)."""
    drain_blocked()  # requests' blocked time tallied since the last drain (cioguard.blocked)
    base = _scrape_registry(registry)
    params = parse_qs(query)
    source: CollectorRegistry | RestrictedRegistry = base
    if "name[]" in params:
        source = base.restricted_registry(params["name[]"])
    encoder, content_type = choose_encoder(accept)
    body = encoder(source)
    headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
    if gzip_accepted(accept_encoding) and len(body) >= GZIP_MIN_BYTES:
        import gzip

        body = gzip.compress(body, compresslevel=6)
        headers.append(("Content-Encoding", "gzip"))
    return headers, body


def _method_not_allowed() -> tuple[int, list[tuple[str, str]], bytes]:
    return 405, [("Allow", _ALLOW), ("Content-Type", "text/plain; charset=utf-8")], b"Method Not Allowed\n"


def make_asgi_app(registry: CollectorRegistry | None = None) -> ASGIApp:
    """An ASGI app serving ``registry`` (default: the process registry, or all workers' files in
    multiprocess mode)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})
            return
        if kind != "http":
            return  # unknown scope types: nothing to serve, nothing to break
        method = scope.get("method", "GET")
        if method in ("GET", "HEAD"):
            headers = _asgi_headers(scope)
            query = scope.get("query_string", b"").decode("latin-1")
            # Collection can take long in multiprocess mode (thousands of files): keep it off the loop.
            out_headers, body = await asyncio.get_running_loop().run_in_executor(
                None,
                exposition,
                registry,
                headers.get("accept", ""),
                headers.get("accept-encoding", ""),
                query,
            )
            status = 200
        elif method == "OPTIONS":
            status, out_headers, body = 200, [("Allow", _ALLOW)], b""
        else:
            status, out_headers, body = _method_not_allowed()
        out_headers = [*out_headers, ("Content-Length", str(len(body)))]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers],
            }
        )
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return app


def _asgi_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop: acknowledge each phase so the server proceeds.
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
        else:
            return


def make_wsgi_app(registry: CollectorRegistry | None = None) -> WSGIApp:
    """A WSGI app serving ``registry`` (same defaults as :func:`make_asgi_app`)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            headers, body = exposition(
                registry,
                environ.get("HTTP_ACCEPT", ""),
                environ.get("HTTP_ACCEPT_ENCODING", ""),
                environ.get("QUERY_STRING", ""),
            )
            status = "200 OK"
        elif method == "OPTIONS":
            status, headers, body = "200 OK", [("Allow", _ALLOW)], b""
        else:
            code, headers, body = _method_not_allowed()
            status = f"{code} Method Not Allowed"
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b"" if method == "HEAD" else body]

    return app


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges in multiprocess mode.

    Use it in ``gunicorn.conf.py`` (``from cioguard.metrics import child_exit``) or call it from
    your own hook. Does nothing when ``PROMETHEUS_MULTIPROC_DIR`` is not set; never raises.
    """
    path = multiprocess_dir()
    if path is None:
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)  # type: ignore[no-untyped-call]
    except Exception:  # a hook must not crash the gunicorn arbiter
        import logging

        logging.getLogger("cioguard.telemetry").exception("cioguard: mark_process_dead failed")
