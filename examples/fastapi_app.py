"""FastAPI + cioguard: ``async def`` endpoints calling the synchronous ``customerio`` SDK.

This is where a blocking SDK hurts most: an ``async def`` endpoint that calls ``cio.track()`` stalls
the whole event loop — every other request of the worker — for the full Customer.io round trip.
With ``cioguard.instrument()`` the call only enqueues, and the middleware measures the time each
request still spent blocked (``customerio_http_request_blocked_seconds``). Run it with
``CIOGUARD_MODE=blocking`` to see the difference and the CIO007 warning.

Run it against the local emulator::

    cioguard emulator --port 8765 --latency 0.2 &
    export CIOGUARD_TRACK_URL=http://127.0.0.1:8765 CIOGUARD_API_URL=http://127.0.0.1:8765
    export CUSTOMERIO_SITE_ID=site-id CUSTOMERIO_TRACK_API_KEY=track-key CUSTOMERIO_APP_API_KEY=app-key
    export CUSTOMERIO_WEBHOOK_SIGNING_KEY=dev-signing-key        # optional: mounts the webhook receiver
    uvicorn fastapi_app:app --app-dir examples --port 8000

    curl -X POST localhost:8000/signup -H 'content-type: application/json' \\
         -d '{"user_id": "1001", "email": "ada@example.com"}'
    curl -s localhost:8000/metrics | grep customerio_http_request_blocked
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import Route

import cioguard
from cioguard.asgi import CioGuardMiddleware
from cioguard.webhooks import WebhookReceiver

cioguard.instrument()  # background delivery; options from CIOGUARD_* variables
cio = cioguard.track_client()  # one client per process, from CUSTOMERIO_* variables


class Signup(BaseModel):
    user_id: str
    email: str
    plan: str = "free"


app = FastAPI(title="cioguard FastAPI example")
app.add_middleware(CioGuardMiddleware)


@app.post("/signup", status_code=201)
async def signup(form: Signup) -> dict[str, str]:
    cio.identify(form.user_id, email=form.email, plan=form.plan, created_at=int(time.time()))
    cio.track(form.user_id, "signed_up", data={"plan": form.plan})
    return {"user_id": form.user_id}


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


signing_key = os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY")
if signing_key:
    # "unsubscribe" keeps the profile; the default "suppress" DELETES the person in Customer.io.
    receiver = WebhookReceiver(signing_key, on_bounce="unsubscribe", client=cio)
    # A route (not a mount) so the exact URL you configure in Customer.io answers without a redirect.
    app.router.routes.append(Route("/webhooks/customerio", receiver.asgi_app(), methods=["POST"]))
