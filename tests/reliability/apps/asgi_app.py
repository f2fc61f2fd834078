"""ASGI app for the uvicorn test: a bare ASGI callable wrapped in cioguard's middleware.

The inner app does not implement ``lifespan``; the middleware implements it and flushes on
shutdown (SIGTERM to uvicorn). ``APP_LIFESPAN=raise`` makes the inner app raise on non-HTTP scopes
(``assert scope["type"] == "http"``), ``return`` (default) makes it return at once: both are common
ways for a bare ASGI app not to support lifespan. ``APP_MIDDLEWARE=off`` serves the inner app
bare. ``GET /send?n=N&start=S`` sends N ``track`` calls for person ``asgi`` with sequence numbers
S…S+N-1; ``GET /healthz`` answers 200.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from customerio import CustomerIO

import cioguard
from cioguard.asgi import CioGuardMiddleware

Message = MutableMapping[str, Any]

cioguard.instrument()
cio = CustomerIO("site-id", "track-key")


async def _app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        if os.environ.get("APP_LIFESPAN") == "raise":
            raise RuntimeError(f"unsupported scope type {scope['type']}")
        return
    if scope["path"] == "/send":
        query = parse_qs(scope.get("query_string", b"").decode())
        start, count = int(query["start"][0]), int(query["n"][0])
        for seq in range(start, start + count):
            cio.track("asgi", "app_event", data={"who": "asgi", "seq": seq})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


# ``APP_MIDDLEWARE=off``: the bare app (no lifespan at all): only the exit flush can deliver.
app = _app if os.environ.get("APP_MIDDLEWARE") == "off" else CioGuardMiddleware(_app)
