"""A webhook receiver served by a real server process, configured from the environment (tests only).

``asgi``: a Starlette app with the README's ``Route`` recipe; ``wsgi``: the receiver's WSGI app. Both
answer ``/healthz``. Environment: the example variables (``CIOGUARD_TRACK_URL``…),
``WEBHOOK_DEDUPE`` (the receiver's ``dedupe`` option), ``WEBHOOK_READ_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import cioguard
from cioguard.webhooks import WebhookReceiver

cioguard.instrument()
receiver = WebhookReceiver(
    os.environ["CUSTOMERIO_WEBHOOK_SIGNING_KEY"],
    on_bounce="unsubscribe",
    dedupe=os.environ.get("WEBHOOK_DEDUPE") or None,
    read_timeout=float(os.environ.get("WEBHOOK_READ_TIMEOUT", "10")),
)


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(os.getpid()))


asgi = Starlette(
    routes=[Route("/healthz", healthz), Route("/webhooks/customerio", receiver.asgi_app(), methods=["POST"])]
)
_webhook_wsgi = receiver.wsgi_app()


def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    return _webhook_wsgi(environ, start_response)
