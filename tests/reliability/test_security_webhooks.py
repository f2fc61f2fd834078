"""Security: the reporting-webhook receiver under forged, stale, replayed, truncated and oversized
requests with wrong content types, through both ``asgi_app()`` and ``wsgi_app()``.

Only a correctly signed, fresh, JSON, first-seen event reaches ``on_event``; everything else is
refused with the documented status, and hypothesis-generated requests never get a 2xx without the
signing key. Request bodies never appear in the responses.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import report

from cioguard.webhooks import WebhookReceiver
from cioguard.webhooks.signature import sign

KEY = "whsec-SECRET-signing-key"
NOW = 1_800_000_000
Request = tuple[str, dict[str, str], bytes]
Caller = Callable[[WebhookReceiver, Request], tuple[int, bytes]]


def call_wsgi(receiver: WebhookReceiver, request: Request) -> tuple[int, bytes]:
    method, headers, body = request
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": headers.get("content-length", str(len(body))),
    }
    for name, value in headers.items():
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        elif name != "content-length":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda _: None

    chunks = receiver.wsgi_app()(environ, start_response)
    return int(status[0].split()[0]), b"".join(chunks)


def call_asgi(receiver: WebhookReceiver, request: Request) -> tuple[int, bytes]:
    method, headers, body = request
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[MutableMapping[str, Any]] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(receiver.asgi_app()(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def event(event_id: str = "evt-1", metric: str = "delivered") -> bytes:
    return json.dumps({"event_id": event_id, "metric": metric, "object_type": "email", "data": {}}).encode()


def signed(body: bytes, ts: int = NOW, key: str = KEY, content_type: str = "application/json") -> Request:
    headers = {
        "x-cio-timestamp": str(ts),
        "x-cio-signature": sign(key, ts, body),
        "content-type": content_type,
    }
    return ("POST", headers, body)


def receiver_for(seen: list[str]) -> WebhookReceiver:
    return WebhookReceiver(
        KEY,
        on_bounce="none",
        clock=lambda: float(NOW),
        max_body=100_000,
        on_event=lambda e: seen.append(e.event_id),
    )


def attack_cases() -> list[tuple[str, Request, int]]:
    body = event("evt-attack")
    good = signed(body)
    truncated = dict(good[1], **{"x-cio-signature": good[1]["x-cio-signature"][:32]})
    huge = event("evt-huge") + b" " * 200_000
    return [
        ("forged_key", signed(body, key="not-the-key"), 401),
        ("stale", signed(body, ts=NOW - 3_600), 401),
        ("future", signed(body, ts=NOW + 3_600), 401),
        ("truncated_signature", ("POST", truncated, body), 401),
        ("body_swapped", ("POST", good[1], event("evt-other")), 401),
        ("no_signature", ("POST", {"content-type": "application/json"}, body), 401),
        ("timestamp_not_int", ("POST", dict(good[1], **{"x-cio-timestamp": "1e9"}), body), 401),
        ("huge_body", signed(huge), 413),
        ("lying_content_length", ("POST", dict(good[1], **{"content-length": "999999999"}), body), 413),
        ("wrong_content_type", signed(body, content_type="text/plain"), 415),
        ("form_content_type", signed(body, content_type="application/x-www-form-urlencoded"), 415),
        ("signed_not_json", signed(b"{not json"), 400),
        ("signed_json_array", signed(b"[1, 2]"), 400),
        ("get", ("GET", good[1], b""), 405),
    ]  # fmt: skip


@pytest.mark.parametrize("call", [call_wsgi, call_asgi], ids=["wsgi", "asgi"])
def test_attacks_are_refused_and_never_dispatched(call: Caller) -> None:
    seen: list[str] = []
    receiver = receiver_for(seen)
    outcomes = {}
    for name, request, status in attack_cases():
        got, body = call(receiver, request)
        outcomes[name] = got
        assert got == status, (name, got, body)
        assert b"SECRET" not in body
    assert seen == []
    # A valid event is dispatched once; replaying it (same id, even re-signed later) is not.
    first = signed(event("evt-good"))
    assert call(receiver, first)[0] == 200
    assert call(receiver, first)[0] == 200
    assert call(receiver, signed(event("evt-good"), ts=NOW + 10))[0] == 200
    assert seen == ["evt-good"]
    report(f"webhook_attacks_{call.__name__}", cases=len(outcomes), outcomes=outcomes, dispatched=seen)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ts=st.one_of(st.integers(NOW - 400, NOW + 400).map(str), st.text(max_size=12)),
    signature=st.one_of(st.text(alphabet="0123456789abcdef", min_size=0, max_size=64), st.text(max_size=70)),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/json; charset=utf-8"]),
)
def test_random_requests_never_pass_without_the_key(
    ts: str, signature: str, body: bytes, content_type: str
) -> None:
    seen: list[str] = []
    receiver = receiver_for(seen)
    headers = {"x-cio-timestamp": ts, "x-cio-signature": signature, "content-type": content_type}
    for call in (call_wsgi, call_asgi):
        status, _ = call(receiver, ("POST", headers, body))
        assert status in (401, 413, 415, 400), status
    assert seen == []
