"""Helpers shared by the web-layer tests (imported as ``web_helpers``; tests/web is on sys.path)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx

from cioguard.blocked import drain
from cioguard.telemetry.recorder import NullRecorder
from cioguard.webhooks import sign

SIGNING_KEY = "whsec-test"


class KeepingRecorder(NullRecorder):
    """A real Recorder implementation that keeps the web-layer measurements in lists."""

    def __init__(self) -> None:
        self._blocked: list[float] = []
        self.events: list[str] = []
        self.rejected: list[str] = []

    @property
    def blocked(self) -> list[float]:
        """Every request's blocked seconds so far (the middleware tallies them: drain first)."""
        drain()
        return self._blocked

    def http_request_blocked(self, seconds: float) -> None:
        self._blocked.append(seconds)

    def webhook_event(self, metric: str) -> None:
        self.events.append(metric)

    def webhook_rejected(self, reason: str) -> None:
        self.rejected.append(reason)


def event_body(event_id: str = "01HZXEVENT0001", metric: str = "delivered", **extra: Any) -> bytes:
    envelope: dict[str, Any] = {
        "event_id": event_id,
        "object_type": "email",
        "metric": metric,
        "timestamp": 1_700_000_000,
        "data": {"delivery_id": "RAECAAA", "customer_id": "user-42", "identifiers": {"id": "user-42"}},
    }
    envelope.update(extra)
    return json.dumps(envelope).encode()


def signed_headers(body: bytes, *, timestamp: float | None = None, key: str = SIGNING_KEY) -> dict[str, str]:
    ts = int(time.time() if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-CIO-Timestamp": str(ts),
        "X-CIO-Signature": sign(key, ts, body),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def asgi_request(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    """One request to an ASGI app through httpx's in-process transport (no lifespan)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(method, path, content=body, headers=headers)
            await response.aread()
            return response

    return asyncio.run(run())
