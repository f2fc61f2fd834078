"""Webhook hardening: deep JSON answers 400 (never 500), blank keys are refused, slow bodies get 408."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from servers import BIN, example_env, run_server
from web_helpers import SIGNING_KEY, KeepingRecorder, asgi_request, event_body, free_port, signed_headers
from werkzeug.test import Client

from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import WebhookEvent, WebhookReceiver

HERE = Path(__file__).parent
SERVER_KEY = "dev-signing-key"  # what example_env() gives the server


def _nested(depth: int) -> bytes:
    """A valid envelope whose ``data`` nests lists ``depth`` levels deep."""
    inner = "[" * depth + "]" * depth
    return (
        '{"event_id": "01HZXDEEP", "object_type": "email", "metric": "delivered", "data": {"deep": '
        + inner
        + "}}"
    ).encode()


def _post(kind: str, receiver: WebhookReceiver, body: bytes) -> int:
    headers = signed_headers(body)
    if kind == "asgi":
        return asgi_request(receiver.asgi_app(), "POST", "/", body, headers).status_code
    return Client(receiver.wsgi_app()).post("/", data=body, headers=headers).status_code


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_signed_body_answers_400(kind: str, depth: int, recorder: KeepingRecorder) -> None:
    seen: list[WebhookEvent] = []
    receiver = WebhookReceiver(SIGNING_KEY, on_event=seen.append, on_bounce="none", max_body=10_000_000)
    # 40 levels: parseable but over max_depth; 100 000: past the interpreter's recursion limit.
    assert _post(kind, receiver, _nested(depth)) == 400
    assert recorder.rejected == ["malformed"]
    assert seen == []
    # Nesting within the limit is an ordinary event.
    assert _post(kind, receiver, _nested(20).replace(b"01HZXDEEP", b"01HZXSHALLOW")) == 200
    assert [event.event_id for event in seen] == ["01HZXSHALLOW"]


@pytest.mark.parametrize("key", ["", "   ", "\n\t ", b"", b"  \r\n"])
def test_blank_signing_key_is_refused_at_construction(key: str | bytes) -> None:
    with pytest.raises(ValueError, match="signing_key"):
        WebhookReceiver(key)


def test_option_validation() -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        WebhookReceiver(SIGNING_KEY, read_timeout=0)
    with pytest.raises(ValueError, match="max_depth"):
        WebhookReceiver(SIGNING_KEY, max_depth=0)


def test_asgi_body_slower_than_read_timeout_gets_408(recorder: KeepingRecorder) -> None:
    # Explicit opt-in: read_timeout=0.2 instead of the default 10 s, to keep the test short.
    receiver = WebhookReceiver(SIGNING_KEY, on_bounce="none", read_timeout=0.2)
    body = event_body()
    headers = [(k.lower().encode(), v.encode()) for k, v in signed_headers(body).items()]
    sent: list[MutableMapping[str, Any]] = []

    async def scenario() -> float:
        stalled = asyncio.Event()
        messages = [{"type": "http.request", "body": body[:10], "more_body": True}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await stalled.wait()  # the sender never sends the rest
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
        started = time.monotonic()
        await asyncio.wait_for(receiver.asgi_app()(scope, receive, send), 5)
        return time.monotonic() - started

    took = asyncio.run(scenario())
    assert sent[0]["status"] == 408
    assert recorder.rejected == ["timeout"]
    assert took < 2


def _slow_request(port: int, body: bytes) -> tuple[bytes, float]:
    """Headers and the first 10 body bytes, then nothing: what the server answers, and when."""
    headers = signed_headers(body, key=SERVER_KEY)
    head = (
        "POST /webhooks/customerio HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        started = time.monotonic()
        sock.sendall(head.encode() + body[:10])
        answer = sock.recv(4096)
        return answer, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_slow_sender_gets_408_from_a_real_server(server: str, tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        # Explicit opt-in: read_timeout=1 s instead of 10 s, to keep the test short.
        env = example_env(fake.url, WEBHOOK_READ_TIMEOUT="1", PYTHONPATH=str(HERE))
        if server == "gunicorn":  # one sync worker: a stuck read would hold the only worker
            argv = [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--timeout", "60"]
            argv += ["--no-control-socket", "webhook_server:wsgi"]
        else:
            argv = [sys.executable, "-m", "uvicorn", "webhook_server:asgi", "--port", str(port)]
            argv += ["--host", "127.0.0.1", "--log-level", "warning"]
        with run_server(argv, port, env, tmp_path / "server.log") as running:
            answer, took = _slow_request(port, event_body())
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert 0.9 <= took < 5, took
            # The worker is free again: an ordinary delivery is accepted.
            body = event_body(event_id="01HZXAFTER")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                headers = signed_headers(body, key=SERVER_KEY)
                request = (
                    "POST /webhooks/customerio HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    + f"Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                sock.sendall(request)
                reply = b""
                while chunk := sock.recv(4096):  # Connection: close: read to the end
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 200"), reply
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"status": "ok"}
            running.stop()
