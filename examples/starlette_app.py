"""Starlette + cioguard: a signup endpoint that never waits for Customer.io, /metrics, bounce webhooks.

Run it against the local emulator (no Customer.io account needed)::

    cioguard emulator --port 8765 &
    export CIOGUARD_TRACK_URL=http://127.0.0.1:8765 CIOGUARD_API_URL=http://127.0.0.1:8765
    export CUSTOMERIO_SITE_ID=site-id CUSTOMERIO_TRACK_API_KEY=track-key CUSTOMERIO_APP_API_KEY=app-key
    export CUSTOMERIO_WEBHOOK_SIGNING_KEY=dev-signing-key        # optional: mounts the webhook receiver
    uvicorn starlette_app:app --app-dir examples --port 8000

    curl -X POST localhost:8000/signup -H 'content-type: application/json' \\
         -d '{"user_id": "1001", "email": "ada@example.com", "plan": "pro"}'
    curl -s localhost:8000/metrics | grep ^customerio_

Against the real Customer.io, leave the two ``CIOGUARD_*_URL`` variables unset. Stopping the server
(Ctrl-C / SIGTERM) runs the ASGI lifespan shutdown, where the middleware delivers what is queued.
"""

from __future__ import annotations

import os
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

import cioguard
from cioguard.asgi import CioGuardMiddleware
from cioguard.webhooks import WebhookReceiver

cioguard.instrument()  # background delivery; options from CIOGUARD_* variables
cio = cioguard.track_client()  # one client per process, from CUSTOMERIO_* variables


async def signup(request: Request) -> JSONResponse:
    body = await request.json()
    user_id, plan = str(body["user_id"]), str(body.get("plan", "free"))
    # Both calls only enqueue: the request does not wait for Customer.io.
    cio.identify(user_id, email=body["email"], plan=plan, created_at=int(time.time()))
    cio.track(user_id, "signed_up", data={"plan": plan})
    return JSONResponse({"user_id": user_id}, status_code=201)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


routes: list[BaseRoute] = [
    Route("/signup", signup, methods=["POST"]),
    Route("/healthz", healthz),
]
signing_key = os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY")
if signing_key:
    # "unsubscribe" keeps the profile; the default "suppress" DELETES the person in Customer.io.
    receiver = WebhookReceiver(signing_key, on_bounce="unsubscribe", client=cio)
    # A Route (not a Mount) so the exact URL you configure in Customer.io answers without a redirect.
    routes.append(Route("/webhooks/customerio", receiver.asgi_app(), methods=["POST"]))

app = Starlette(routes=routes, middleware=[Middleware(CioGuardMiddleware)])
