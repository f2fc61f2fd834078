"""Starlette rows: request latency of an endpoint that calls ``track()``, and middleware overhead.

The ASGI app is driven directly (scope, receive, send) on one asyncio loop, so the numbers are the
app's own time per request — no HTTP client or socket noise. The ``/track`` endpoint is a plain
``def`` (Starlette runs it in its thread pool, the right place for blocking I/O) calling the SDK
against a 50 ms server:

- no Customer.io call (the endpoint's own floor);
- the blocking SDK (each request waits for the server);
- cioguard background mode with ``cioguard.asgi.CioGuardMiddleware``.

Middleware overhead is measured on a trivial ``async`` endpoint with and without the middleware,
alternating rounds so drift in machine load hits both equally. A third app in the same rounds is the
floor of any request-scoping pure ASGI middleware: a pass-through with a ``ContextVar`` set/reset.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from benchmarks.cio_api import identify_all, instrumented
from benchmarks.harness import EVENT_NAME, SMALL_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.target import cio_target
from benchmarks.timing import summarise

GROUP = "web"
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def build_app(client: Any | None) -> Any:
    """A Starlette app with ``POST /track`` (calls ``client.track`` if given) and ``GET /ping``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    ids = customer_ids()

    def track(request: Request) -> JSONResponse:
        if client is not None:
            client.track(next(ids), EVENT_NAME, SMALL_DATA)
        return JSONResponse({"ok": True})

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    return Starlette(routes=[Route("/track", track, methods=["POST"]), Route("/ping", ping)])


def _scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench.local"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


async def _request(app: ASGIApp, method: str, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(_scope(method, path), receive, send)
    return status


def request_times(
    apps: list[ASGIApp], method: str, path: str, count: int, seconds: float
) -> list[list[float]]:
    """Nanoseconds per request for each app, in alternating rounds of 10 (bounded in count and time)."""

    async def drive() -> list[list[float]]:
        times: list[list[float]] = [[] for _ in apps]
        for app in apps:  # warm up: routing caches, thread pool, first connection
            for _ in range(3):
                await _request(app, method, path)
        deadline = time.monotonic() + seconds
        while len(times[-1]) < count and time.monotonic() < deadline:
            for index, app in enumerate(apps):
                for _ in range(10):
                    start = time.perf_counter_ns()
                    status = await _request(app, method, path)
                    times[index].append(time.perf_counter_ns() - start)
                    if status != 200:
                        raise RuntimeError(f"{method} {path} answered {status}")
        return times

    return asyncio.run(drive())


def _latency_row(name: str, values: list[float], unit: str, **extra: Any) -> Row:
    scale = 1e6 if unit == "ms" else 1e3
    stats = summarise([v / scale for v in values], len(values))
    return Row(GROUP, name, unit, stats.median_ns, stats.p99_ns, stats.samples, extra={**extra})


def _track_endpoint_rows(bench: Bench) -> None:
    target = cio_target(bench)
    sizes = bench.sizes
    count, seconds = sizes.web_requests, sizes.slow_seconds * 3
    target.set_latency(0.05)
    try:
        base = request_times([build_app(None)], "POST", "/track", count, seconds)[0]
        base_row = bench.add(_latency_row("starlette /track, no Customer.io call", base, "ms"))
        client = target.client()
        try:
            blocking = request_times(
                [build_app(client)], "POST", "/track", sizes.slow_calls, sizes.slow_seconds
            )
            bench.add(
                _latency_row("starlette /track, blocking SDK, 50 ms", blocking[0], "ms", server_delay_ms=50)
            )
        finally:
            client.close()

        def guarded() -> Row:
            asgi: Any = importlib.import_module("cioguard.asgi")
            with instrumented(track_url=target.track_url) as cg:
                client = target.client()
                try:
                    identify_all(client)
                    cg.flush()
                    app = asgi.CioGuardMiddleware(build_app(client))
                    values = request_times([app], "POST", "/track", count, seconds)[0]
                finally:
                    client.close()
            row = _latency_row(
                "starlette /track, cioguard bg + middleware, 50 ms", values, "ms", server_delay_ms=50
            )
            row.extra["p99_over_no_call_ms"] = row.p99 - base_row.p99
            row.extra["p50_over_no_call_ms"] = row.median - base_row.median
            row.note = f"p99 +{row.p99 - base_row.p99:.3f} ms over no call"
            return row

        bench.guard(GROUP, "starlette /track, cioguard bg + middleware, 50 ms", "ms", guarded)
    finally:
        target.set_latency(0.0)


_floor_var: ContextVar[object] = ContextVar("bench_floor", default=None)


class FloorMiddleware:
    """What any request-scoping pure ASGI middleware pays: its own coroutine frame plus a
    ``ContextVar`` set/reset (the only way a request follows into a sync endpoint's thread)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _floor_var.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _floor_var.reset(token)


def _middleware_rows(bench: Bench) -> list[Row]:
    asgi: Any = importlib.import_module("cioguard.asgi")
    sizes = bench.sizes
    plain = build_app(None)
    wrapped = asgi.CioGuardMiddleware(build_app(None))
    floor = FloorMiddleware(build_app(None))
    # 20 000 requests per app (~0.2 s each): a few hundred ms of a neighbour's burst cannot move
    # the medians of a ~0.5 µs difference the way it moved 2 000 (~20 ms).
    count = sizes.web_requests * 50
    # Instrumented as in production: the middleware then also opens request scopes that matter.
    with instrumented(track_url=cio_target(bench).track_url):
        without, with_mw, with_floor = request_times(
            [plain, wrapped, floor], "GET", "/ping", count, sizes.slow_seconds * 3
        )
    row_without = _latency_row("starlette trivial endpoint, no middleware", without, "us/req")
    rows = [row_without]
    for name, values in (
        ("starlette trivial endpoint, CioGuardMiddleware", with_mw),
        ("starlette trivial endpoint, floor: pass-through + ContextVar set/reset", with_floor),
    ):
        row = _latency_row(name, values, "us/req")
        overhead = 100 * (row.median - row_without.median) / row_without.median
        row.extra["overhead_pct"] = overhead
        row.note = f"{overhead:+.1f} % median"
        rows.append(row)
    return rows


def run(bench: Bench) -> None:
    bench.guard(GROUP, "starlette /track rows", "ms", lambda: _track_endpoint_rows(bench))

    def middleware() -> None:
        for row in _middleware_rows(bench):
            bench.add(row)

    bench.guard(GROUP, "starlette middleware overhead", "us/req", middleware)
