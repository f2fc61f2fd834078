"""cioguard.asgi.CioGuardMiddleware in-process: scopes, blocked time, metrics path, lifespan."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from web_helpers import KeepingRecorder, asgi_request

from cioguard.asgi import CioGuardMiddleware
from cioguard.scope import current_request

Message = dict[str, Any]


def _block(seconds: float) -> None:
    """What the instrumentation does for a blocking Customer.io call inside a request."""
    scope = current_request()
    assert scope is not None
    scope.blocked_seconds += seconds


def test_starlette_route_template_and_blocked_time(recorder: KeepingRecorder) -> None:
    seen: list[tuple[str, str | None]] = []

    async def user(request: Request) -> JSONResponse:
        scope = current_request()
        assert scope is not None
        seen.append((scope.method, scope.route))  # known before the endpoint ran
        _block(0.25)
        _block(0.05)
        return JSONResponse({"ok": True})

    app = CioGuardMiddleware(Starlette(routes=[Route("/users/{user_id:int}", user)]))
    response = asgi_request(app, "GET", "/users/42")
    assert response.status_code == 200
    assert seen == [("GET", "/users/{user_id}")]
    assert recorder.blocked == [pytest.approx(0.30)]
    assert current_request() is None


def test_every_request_is_recorded_even_when_nothing_blocked(recorder: KeepingRecorder) -> None:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = CioGuardMiddleware(Starlette(routes=[Route("/", home)]))
    for _ in range(3):
        assert asgi_request(app, "GET", "/").text == "hi"
    assert asgi_request(app, "GET", "/missing").status_code == 404
    assert recorder.blocked == [0.0, 0.0, 0.0, 0.0]


def test_fastapi_sync_and_async_endpoints_share_the_request_scope(recorder: KeepingRecorder) -> None:
    routes: list[str | None] = []
    api = FastAPI()

    @api.post("/signup/{plan}")
    async def signup(plan: str) -> dict[str, str]:
        scope = current_request()
        routes.append(scope.route if scope else "no scope")
        _block(0.2)  # an async endpoint calling the sync SDK: the event loop itself blocks
        return {"plan": plan}

    @api.get("/sync/{item_id}")
    def sync_endpoint(item_id: int) -> dict[str, int]:
        # Runs in a worker thread: the context (and so the scope object) is copied there.
        scope = current_request()
        routes.append(scope.route if scope else "no scope")
        _block(0.1)
        return {"item": item_id}

    app = CioGuardMiddleware(api)
    assert asgi_request(app, "POST", "/signup/pro").json() == {"plan": "pro"}
    assert asgi_request(app, "GET", "/sync/7").json() == {"item": 7}
    assert routes == ["/signup/{plan}", "/sync/{item_id}"]
    assert recorder.blocked == [pytest.approx(0.2), pytest.approx(0.1)]


def test_nested_middleware_measures_each_request_once(recorder: KeepingRecorder) -> None:
    async def home(request: Request) -> PlainTextResponse:
        _block(0.1)
        return PlainTextResponse("hi")

    app = CioGuardMiddleware(CioGuardMiddleware(Starlette(routes=[Route("/", home)])))
    assert asgi_request(app, "GET", "/").text == "hi"
    assert recorder.blocked == [pytest.approx(0.1)]


def test_exception_is_recorded_and_reraised(recorder: KeepingRecorder) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        _block(0.5)
        raise LookupError("boom")

    app = CioGuardMiddleware(broken)
    with pytest.raises(LookupError, match="boom"):
        asgi_request(app, "GET", "/")
    assert recorder.blocked == [0.5]
    assert current_request() is None


def test_metrics_path_is_served_by_the_metrics_app(recorder: KeepingRecorder) -> None:
    async def metrics(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("customerio_up 1\n")(scope, receive, send)

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"app {request.method}")

    inner = Starlette(routes=[Route("/metrics", home, methods=["POST"]), Route("/", home)])
    app = CioGuardMiddleware(inner, metrics_app=metrics)
    assert asgi_request(app, "GET", "/metrics").text == "customerio_up 1\n"
    assert asgi_request(app, "POST", "/metrics").text == "app POST"  # not a scrape
    assert recorder.blocked == [0.0]  # the scrape opened no request scope
    off = CioGuardMiddleware(inner, metrics_path=None, metrics_app=metrics)
    assert asgi_request(off, "GET", "/metrics").status_code == 405


def test_default_metrics_app_exposes_cioguard_metrics() -> None:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("home")

    app = CioGuardMiddleware(Starlette(routes=[Route("/", home)]))
    response = asgi_request(app, "GET", "/metrics")
    assert response.status_code == 200
    assert "text/plain" in response.headers["content-type"]


# -- websocket and lifespan, driven as raw ASGI ---------------------------------------------------


def _drive(app: Any, scope: dict[str, Any], inbox: list[Message]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        if not inbox:
            await asyncio.sleep(3600)  # a server with nothing to say: wait for cancellation
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    return sent


def test_websocket_passes_through_untouched(recorder: KeepingRecorder) -> None:
    observed: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        observed.append((scope, current_request()))
        observed.append(await receive())
        await send({"type": "websocket.accept"})

    scope = {"type": "websocket", "path": "/ws", "headers": []}
    sent = _drive(CioGuardMiddleware(inner), scope, [{"type": "websocket.connect"}])
    assert observed == [(scope, None), {"type": "websocket.connect"}]
    assert observed[0][0] is scope
    assert sent == [{"type": "websocket.accept"}]
    assert recorder.blocked == []


def test_lifespan_shutdown_flushes_after_the_apps_own_handlers() -> None:
    order: list[str] = []

    def shutdown(timeout: float) -> None:
        order.append(f"cioguard.shutdown({timeout}) on {threading.current_thread().name}")

    wrapped = CioGuardMiddleware(_lifespan_app(order), shutdown=shutdown, shutdown_timeout=2.5)
    sent = _drive(
        wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert order == ["app shutdown handler", "cioguard.shutdown(2.5) on cioguard-asgi-shutdown"]


def _lifespan_app(order: list[str]) -> Starlette:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        order.append("app shutdown handler")

    return Starlette(lifespan=lifespan)


def test_app_without_lifespan_support_still_flushes() -> None:
    calls: list[float] = []

    async def http_only(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"  # like prometheus_client's make_asgi_app (#855)

    wrapped = CioGuardMiddleware(http_only, shutdown=calls.append)
    sent = _drive(
        wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == [5.0]


def test_app_that_returns_on_lifespan_still_flushes() -> None:
    calls: list[float] = []

    async def ignores_other_scopes(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # a common hand-written app: returns instead of raising
            return

    wrapped = CioGuardMiddleware(ignores_other_scopes, shutdown=calls.append)
    sent = _drive(
        wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert calls == [5.0]


def test_a_hung_shutdown_is_abandoned_after_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def hung(timeout: float) -> None:
        release.wait(timeout=30)

    wrapped = CioGuardMiddleware(_lifespan_app([]), shutdown=hung, shutdown_timeout=0.1)
    started = time.monotonic()
    try:
        sent = _drive(
            wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        )
    finally:
        release.set()
    elapsed = time.monotonic() - started
    assert [m["type"] for m in sent][-1] == "lifespan.shutdown.complete"
    assert 1.0 <= elapsed < 3.0  # shutdown_timeout + 1 s grace
    assert "did not finish" in caplog.text


def test_shutdown_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def failing(timeout: float) -> None:
        raise RuntimeError("sender gone")

    wrapped = CioGuardMiddleware(_lifespan_app([]), shutdown=failing)
    sent = _drive(
        wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    )
    assert sent[-1]["type"] == "lifespan.shutdown.complete"
    assert "sender gone" in caplog.text


def test_flush_on_shutdown_false_passes_lifespan_through() -> None:
    calls: list[float] = []
    wrapped = CioGuardMiddleware(_lifespan_app([]), shutdown=calls.append, flush_on_shutdown=False)
    _drive(wrapped, {"type": "lifespan"}, [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    assert calls == []


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="metrics_path"):
        CioGuardMiddleware(_lifespan_app([]), metrics_path="metrics")
    with pytest.raises(ValueError, match="shutdown_timeout"):
        CioGuardMiddleware(_lifespan_app([]), shutdown_timeout=-1)


def test_router_writes_reach_middleware_outside() -> None:
    seen: dict[str, Any] = {}

    async def homepage(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = CioGuardMiddleware(Starlette(routes=[Route("/users/{user_id}", homepage)]), metrics_path=None)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        await inner(scope, receive, send)
        seen.update(scope)

    assert asgi_request(outer, "GET", "/users/42").status_code == 200
    assert seen["path_params"] == {"user_id": "42"}
    assert seen["route"].path == "/users/{user_id}"
