"""Adapter-specific behaviour of the webhook apps: streaming limits, loop offloading, mounting."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from web_helpers import SIGNING_KEY, KeepingRecorder, event_body, signed_headers

from cioguard.webhooks import WebhookEvent, WebhookReceiver


def _receiver(**options: Any) -> WebhookReceiver:
    return WebhookReceiver(SIGNING_KEY, on_bounce="none", **options)


def test_asgi_stops_reading_a_stream_past_the_limit(recorder: KeepingRecorder) -> None:
    receiver = _receiver(max_body=100)
    app = receiver.asgi_app()
    chunk = b"x" * 60
    pulled: list[int] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        await asyncio.sleep(0)  # yield, so the wait_for below can end a reader that never stops
        return {"type": "http.request", "body": chunk, "more_body": True}  # an endless body

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 5))
    assert sent[0]["status"] == 413
    assert len(pulled) == 2  # 60 bytes, then 120 > 100: stop
    assert recorder.rejected == ["oversize"]


def test_asgi_answers_lifespan_and_refuses_websockets() -> None:
    app = _receiver().asgi_app()
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    asyncio.run(app({"type": "websocket", "path": "/"}, receive, send))
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]


def test_slow_callback_does_not_block_the_event_loop() -> None:
    """While on_event waits, another endpoint on the same loop must still answer."""
    release = threading.Event()

    def slow(event: WebhookEvent) -> None:
        # If the loop were blocked, /ping could never finish and this would time out.
        assert release.wait(timeout=5), "the event loop was blocked by the webhook callback"

    receiver = _receiver(on_event=slow)

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("pong")

    app = Starlette(routes=[Route("/ping", ping), Mount("/webhooks/customerio", app=receiver.asgi_app())])
    body = event_body()

    async def scenario() -> tuple[int, float, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.monotonic()
            hook = asyncio.create_task(
                client.post("/webhooks/customerio/", content=body, headers=signed_headers(body))
            )
            await asyncio.sleep(0.05)
            pong = await client.get("/ping")
            ping_done = time.monotonic() - started
            assert not hook.done()
            release.set()
            answer = await asyncio.wait_for(hook, 5)
            assert pong.text == "pong"
            return answer.status_code, ping_done, time.monotonic() - started

    status, ping_done, hook_done = asyncio.run(scenario())
    assert status == 200
    assert ping_done < hook_done


def _wsgi_call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)

    body = b"".join(app(environ, start_response))
    return statuses[0], body


def _environ(body: bytes, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": headers.pop("Content-Type", ""),
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    environ.update(extra)
    return environ


def test_wsgi_without_length_needs_a_terminated_stream(recorder: KeepingRecorder) -> None:
    receiver = _receiver()
    app = receiver.wsgi_app()
    body = event_body()
    status, _ = _wsgi_call(app, _environ(body, signed_headers(body)))
    assert status.startswith("411")
    status, _ = _wsgi_call(app, _environ(body, signed_headers(body), **{"wsgi.input_terminated": True}))
    assert status == "200 OK"
    assert recorder.rejected == ["length_required"]


def test_wsgi_chunked_stream_past_the_limit_is_413(recorder: KeepingRecorder) -> None:
    receiver = _receiver(max_body=100_000)
    body = event_body(padding="y" * 200_000)
    stream = io.BytesIO(body)
    environ = _environ(body, signed_headers(body), **{"wsgi.input_terminated": True, "wsgi.input": stream})
    status, _ = _wsgi_call(receiver.wsgi_app(), environ)
    assert status.startswith("413")
    assert stream.tell() < len(body)  # reading stopped early
    assert recorder.rejected == ["oversize"]


def test_wsgi_bad_content_length_is_400(recorder: KeepingRecorder) -> None:
    body = event_body()
    environ = _environ(body, signed_headers(body), CONTENT_LENGTH="12abc")
    status, _ = _wsgi_call(_receiver().wsgi_app(), environ)
    assert status.startswith("400")
    assert recorder.rejected == ["malformed"]
