"""Customer.io reporting-webhook receiver: verified, deduplicated, non-blocking, ASGI and WSGI.

Customer.io posts delivery events (``sent``, ``delivered``, ``opened``, ``bounced``, ``spammed`` …) to
a URL you configure under *Data & Integrations → Reporting webhooks*, signed with a signing key::

    import os
    from cioguard.webhooks import WebhookReceiver

    receiver = WebhookReceiver(
        os.environ["CUSTOMERIO_WEBHOOK_SIGNING_KEY"],
        on_bounce="unsubscribe",          # default "suppress" DELETES the person's profile!
        on_event=lambda event: print(event.metric, event.event_id),
    )
    # Starlette / FastAPI: a Route, so the exact URL answers (a Mount would 307-redirect it to ".../")
    from starlette.routing import Route
    app.router.routes.append(Route("/webhooks/customerio", receiver.asgi_app(), methods=["POST"]))
    # Flask / any WSGI server
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    flask_app.wsgi_app = DispatcherMiddleware(
        flask_app.wsgi_app, {"/webhooks/customerio": receiver.wsgi_app()}
    )

Each request is checked (method, size, ``X-CIO-Timestamp`` within ``tolerance``, ``X-CIO-Signature``
HMAC-SHA256 in constant time, JSON content type and envelope); rejections answer 401/405/411/413/415/400
and are counted in ``customerio_webhook_rejected_total{reason}``. A verified event is counted in
``customerio_webhook_events_total{metric}``, deduplicated on ``event_id`` (Customer.io delivers at least
once, retrying for 7 days), handed to ``on_event`` (exceptions are logged, the answer stays 200) and, for
email ``bounced``/``spammed``, acted on through the instrumented client:

* ``on_bounce="suppress"`` (default): ``client.suppress(id)`` — **permanently DELETES the profile** in
  Customer.io and blocks the identifier; unsuppressing does not restore it.
* ``on_bounce="unsubscribe"``: ``client.identify(id, unsubscribed=True)`` keeps the profile.
* ``on_bounce="none"``: only counts and calls ``on_event``.

With cioguard in background mode the client call only enqueues, so answers stay far inside
Customer.io's 4 s timeout. Creating a receiver also tells the CIO008 pitfall rule that bounces are
handled, and each bounce is remembered so a later email to that person is flagged.

Deduplication memory is per process by default: behind several workers, a redelivery that lands on
another worker acts again. Share it with ``dedupe="sqlite:///webhooks.sqlite"`` (one machine),
``dedupe="redis://…"`` or ``dedupe="redis"`` (cioguard's ``queue_url``) so every worker acts once
(:mod:`cioguard.webhooks.dedupe`). Hardening: nesting deeper than ``max_depth`` (32) answers 400, a
body slower than ``read_timeout`` (10 s) answers 408, and a blank signing key is refused at once.

For tests, :func:`sign` builds the header Customer.io would send and :func:`verify` checks one.
"""

from cioguard.webhooks.actions import BOUNCE_ACTIONS, WebhookClient, person_identifier
from cioguard.webhooks.apps import WebhookASGIApp, WebhookWSGIApp
from cioguard.webhooks.dedupe import DedupeStore, MemoryDedupe, RedisDedupe, SQLiteDedupe
from cioguard.webhooks.receiver import KNOWN_METRICS, WebhookEvent, WebhookReceiver, WebhookResponse
from cioguard.webhooks.signature import DEFAULT_TOLERANCE, SignatureError, sign, verify

__all__ = [
    "BOUNCE_ACTIONS",
    "DEFAULT_TOLERANCE",
    "KNOWN_METRICS",
    "DedupeStore",
    "MemoryDedupe",
    "RedisDedupe",
    "SQLiteDedupe",
    "SignatureError",
    "WebhookASGIApp",
    "WebhookClient",
    "WebhookEvent",
    "WebhookReceiver",
    "WebhookResponse",
    "WebhookWSGIApp",
    "person_identifier",
    "sign",
    "verify",
]
