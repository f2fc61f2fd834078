"""Flask + cioguard under gunicorn: background delivery, per-request scopes, multiprocess /metrics.

Run it with the bundled gunicorn configuration (preloaded app, 4 workers, Prometheus multiprocess
metrics, flush on worker exit) against the local emulator::

    cioguard emulator --port 8765 &
    export CIOGUARD_TRACK_URL=http://127.0.0.1:8765 CIOGUARD_API_URL=http://127.0.0.1:8765
    export CUSTOMERIO_SITE_ID=site-id CUSTOMERIO_TRACK_API_KEY=track-key CUSTOMERIO_APP_API_KEY=app-key
    export CUSTOMERIO_WEBHOOK_SIGNING_KEY=dev-signing-key        # optional: mounts the webhook receiver
    gunicorn -c examples/gunicorn.conf.py

    curl -X POST localhost:8000/signup -H 'content-type: application/json' \\
         -d '{"user_id": "1001", "email": "ada@example.com"}'
    curl -s localhost:8000/metrics | grep ^customerio_

For development without gunicorn: ``flask --app examples/flask_app.py run``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import cioguard
import cioguard.wsgi
from cioguard.webhooks import WebhookReceiver

cioguard.instrument()  # background delivery; options from CIOGUARD_* variables
cio = cioguard.track_client()  # one client per process, from CUSTOMERIO_* variables

app = Flask(__name__)


@app.before_request
def _route_template() -> None:
    # WSGI has no route template: hand Flask's rule (never the raw path) to the request scope.
    if request.url_rule is not None:
        cioguard.wsgi.set_route(request.url_rule.rule)


@app.post("/signup")
def signup() -> ResponseReturnValue:
    body = request.get_json(force=True)
    user_id, plan = str(body["user_id"]), str(body.get("plan", "free"))
    cio.identify(user_id, email=body["email"], plan=plan, created_at=int(time.time()))
    cio.track(user_id, "signed_up", data={"plan": plan})
    return jsonify(user_id=user_id, pid=os.getpid()), 201


@app.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(ok=True)


mounts: dict[str, Any] = {}
signing_key = os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY")
if signing_key:
    # "unsubscribe" keeps the profile; the default "suppress" DELETES the person in Customer.io.
    mounts["/webhooks/customerio"] = WebhookReceiver(
        signing_key, on_bounce="unsubscribe", client=cio
    ).wsgi_app()

# The middleware is outermost, so it serves /metrics and measures every request, webhooks included.
app.wsgi_app = cioguard.wsgi.CioGuardMiddleware(DispatcherMiddleware(app.wsgi_app, mounts))  # type: ignore[method-assign]
