"""The framework-independent core of the reporting-webhook receiver.

:class:`WebhookReceiver` turns one HTTP request (method, headers, raw body) into a
:class:`WebhookResponse`; :mod:`cioguard.webhooks.apps` wraps it as an ASGI and a WSGI application.
The checks run in this order, each rejection counted in
``customerio_webhook_rejected_total{reason}``:

====================  ======  ========================================================
check                 status  reason
====================  ======  ========================================================
method is POST        405     ``method``
body size             413     ``oversize`` (Content-Length first; reading stops past the limit)
                      411     ``length_required`` (WSGI only: no Content-Length, unframed input)
body read deadline    408     ``timeout`` (the whole body within ``read_timeout``; slow senders)
headers present       401     ``missing_signature``
timestamp format      401     ``timestamp``
timestamp in window   401     ``stale``
HMAC-SHA256 matches   401     ``signature``
JSON content type     415     ``content_type``
JSON object envelope  400     ``malformed`` (also nesting deeper than ``max_depth``)
====================  ======  ========================================================

A verified event whose ``event_id`` was seen before answers 200 and does nothing else: Customer.io
delivers at least once and retries for days. Where ids are remembered — this process only, or a
SQLite file / Redis shared by every worker — is the ``dedupe`` option (:mod:`cioguard.webhooks.dedupe`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cioguard.telemetry.labels import WEBHOOK_METRICS
from cioguard.telemetry.recorder import get_recorder
from cioguard.webhooks.actions import BOUNCE_ACTIONS, BounceHandler, WebhookClient
from cioguard.webhooks.dedupe import DedupeStore, make_store
from cioguard.webhooks.signature import DEFAULT_TOLERANCE, SignatureError, verify

if TYPE_CHECKING:
    from cioguard.webhooks.apps import WebhookASGIApp, WebhookWSGIApp

logger = logging.getLogger("cioguard.webhooks")

#: Customer.io's documented metric names; anything else is counted as ``other``. One list, shared with
#: the metric's label set.
KNOWN_METRICS = WEBHOOK_METRICS


@dataclass(frozen=True)
class WebhookEvent:
    """One verified reporting-webhook event, as handed to ``on_event``."""

    event_id: str
    #: ``email``, ``sms``, ``push``, ``in_app``, ``slack``, ``webhook``, ``whatsapp`` or ``customer``.
    object_type: str
    metric: str
    timestamp: int | None
    data: Mapping[str, Any]
    #: The whole decoded envelope.
    payload: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class WebhookResponse:
    """What to answer: a status, a small JSON body, and the rejection reason if any."""

    status: int
    body: bytes
    reason: str | None = None

    @staticmethod
    def json(status: int, document: Mapping[str, str], reason: str | None = None) -> WebhookResponse:
        return WebhookResponse(status, json.dumps(document).encode("utf-8"), reason)


def _too_deep(payload: object, limit: int) -> bool:
    """Whether ``payload`` nests containers more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(payload, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class WebhookReceiver:
    """Verify, deduplicate and act on Customer.io reporting webhooks.

    Args:
        signing_key: the webhook's signing key (str or bytes). Required; an empty key is refused.
        tolerance: seconds a request's ``X-CIO-Timestamp`` may differ from ``clock()`` (default 300).
        max_body: largest accepted body in bytes (default 1 000 000).
        on_event: called with each new :class:`WebhookEvent`; its exceptions are logged and the
            request still answers 200 (Customer.io would otherwise retry it for days).
        on_bounce: what to do when an email ``bounced`` or ``spammed``: ``"suppress"`` (default;
            **DELETES the person's profile** in Customer.io and blocks the identifier),
            ``"unsubscribe"`` (``identify(id, unsubscribed=True)``) or ``"none"``.
        client: the ``customerio.CustomerIO`` client to act through; default ``cioguard.track_client()``,
            built here: missing ``CUSTOMERIO_SITE_ID``/``CUSTOMERIO_TRACK_API_KEY`` are logged as a
            warning now, not found out at the first bounce (unless ``on_bounce="none"``).
            With cioguard in background mode the call only enqueues.
        clock: returns Unix seconds (injectable for tests).
        dedup_size: how many recent event ids the in-process store remembers (default 100 000, ~10 MB).
        dedupe: where seen event ids live: ``"memory"`` (default, per process), ``"sqlite:///PATH"``,
            ``"redis://…"``, ``"redis"`` (cioguard's ``queue_url``) or a
            :class:`~cioguard.webhooks.dedupe.DedupeStore`; see :mod:`cioguard.webhooks.dedupe`.
        max_depth: deepest accepted JSON nesting (default 32; Customer.io's events nest 4 levels).
            Deeper bodies answer 400 and never reach ``on_event``.
        read_timeout: the most seconds reading one body may take (default 10.0; Customer.io sends
            at once and gives up after 4 s). Slower senders get 408.

    Creating a receiver tells the pitfall rules that bounces are handled (CIO008 no longer fires
    for "no receiver") and each bounce is recorded so later sends to that person are flagged.
    """

    def __init__(
        self,
        signing_key: str | bytes,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body: int = 1_000_000,
        on_event: Callable[[WebhookEvent], object] | None = None,
        on_bounce: str = "suppress",
        client: WebhookClient | None = None,
        clock: Callable[[], float] = time.time,
        dedup_size: int = 100_000,
        dedupe: str | DedupeStore | None = None,
        max_depth: int = 32,
        read_timeout: float = 10.0,
    ) -> None:
        # A key of only whitespace is a configuration mistake (an empty variable in a .env file):
        # refuse it rather than accept signatures anyone can compute.
        if not isinstance(signing_key, (str, bytes)) or not signing_key.strip():
            raise ValueError(
                "WebhookReceiver: signing_key is required and must not be blank (Customer.io webhook "
                "signing key, Data & Integrations → Reporting webhooks)"
            )
        if on_bounce not in BOUNCE_ACTIONS:
            raise ValueError(f"WebhookReceiver: on_bounce must be one of {', '.join(BOUNCE_ACTIONS)}")
        if tolerance < 0 or max_body < 1 or dedup_size < 1 or max_depth < 1:
            raise ValueError(
                "WebhookReceiver: tolerance must be >= 0; max_body, dedup_size and max_depth >= 1"
            )
        if not read_timeout > 0:
            raise ValueError("WebhookReceiver: read_timeout must be > 0 seconds")
        self.signing_key = signing_key
        self.tolerance = float(tolerance)
        self.max_body = int(max_body)
        self.on_event = on_event
        self.on_bounce = on_bounce
        self.clock = clock
        self.max_depth = int(max_depth)
        self.read_timeout = float(read_timeout)
        self.dedupe = make_store(dedupe, capacity=int(dedup_size))
        self._bounces = BounceHandler(on_bounce, client)

    # -- the request pipeline ------------------------------------------------------------------

    def reject(self, status: int, reason: str, message: str) -> WebhookResponse:
        """Count a rejection and build its response (used by the ASGI/WSGI adapters too)."""
        get_recorder().webhook_rejected(reason)
        logger.info("cioguard.webhooks: rejected request (%s): %s", reason, message)
        return WebhookResponse.json(status, {"error": message}, reason)

    def precheck(self, method: str, content_length: str | None) -> WebhookResponse | None:
        """Checks that need no body: the method and the declared length. ``None`` means go on."""
        if method.upper() != "POST":
            return self.reject(405, "method", "only POST is accepted")
        if content_length is not None:
            text = content_length.strip()
            if not text.isdigit():
                return self.reject(400, "malformed", "invalid Content-Length")
            if int(text) > self.max_body:
                return self.oversize()
        return None

    def oversize(self) -> WebhookResponse:
        return self.reject(413, "oversize", f"body larger than {self.max_body} bytes")

    def too_slow(self) -> WebhookResponse:
        return self.reject(408, "timeout", f"body not received within {self.read_timeout:g} s")

    def handle(self, method: str, headers: Mapping[str, str], body: bytes) -> WebhookResponse:
        """Process one request. ``headers`` must have lowercase names. May block (callback, client)."""
        early = self.precheck(method, None)
        if early is not None:
            return early
        if len(body) > self.max_body:
            return self.oversize()
        try:
            verify(
                self.signing_key,
                headers.get("x-cio-timestamp"),
                headers.get("x-cio-signature"),
                body,
                now=self.clock(),
                tolerance=self.tolerance,
            )
        except SignatureError as exc:
            return self.reject(401, exc.reason, str(exc))
        if not _is_json(headers.get("content-type")):
            return self.reject(415, "content_type", "Content-Type must be application/json")
        event = self._parse(body, self.max_depth)
        if event is None:
            return self.reject(400, "malformed", "body is not a Customer.io webhook event")
        if not self.dedupe.add(event.event_id):
            logger.debug("cioguard.webhooks: duplicate event %s ignored", event.event_id)
            return WebhookResponse.json(200, {"status": "duplicate"})
        get_recorder().webhook_event(event.metric if event.metric in KNOWN_METRICS else "other")
        self._dispatch(event)
        return WebhookResponse.json(200, {"status": "ok"})

    @staticmethod
    def _parse(body: bytes, max_depth: int) -> WebhookEvent | None:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: nesting deeper than the interpreter's limit (a 500 otherwise).
            return None
        if not isinstance(payload, dict) or _too_deep(payload, max_depth):
            return None
        event_id, metric = payload.get("event_id"), payload.get("metric")
        data = payload.get("data", {})
        if not isinstance(event_id, str) or not event_id or not isinstance(metric, str):
            return None
        if not isinstance(data, dict):
            return None
        timestamp = payload.get("timestamp")
        object_type = payload.get("object_type")
        return WebhookEvent(
            event_id=event_id,
            object_type=object_type if isinstance(object_type, str) else "",
            metric=metric,
            timestamp=timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None,
            data=data,
            payload=payload,
        )

    def _dispatch(self, event: WebhookEvent) -> None:
        # Nothing below may turn a verified event into a non-2xx: Customer.io would redeliver it
        # for days and backlog every later webhook behind it.
        try:
            self._bounces.handle(event)
        except Exception:
            logger.exception("cioguard.webhooks: bounce handling failed for event %s", event.event_id)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("cioguard.webhooks: on_event callback raised for event %s", event.event_id)

    # -- adapters ------------------------------------------------------------------------------

    def asgi_app(self) -> WebhookASGIApp:
        """An ASGI application serving this receiver (mount it at e.g. ``/webhooks/customerio``)."""
        from cioguard.webhooks.apps import WebhookASGIApp

        return WebhookASGIApp(self)

    def wsgi_app(self) -> WebhookWSGIApp:
        """A WSGI application serving this receiver."""
        from cioguard.webhooks.apps import WebhookWSGIApp

        return WebhookWSGIApp(self)
