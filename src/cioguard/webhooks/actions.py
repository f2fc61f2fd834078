"""What the webhook receiver does when an email bounced or was marked as spam.

``on_bounce="suppress"`` (the default) calls ``client.suppress(customer_id)``. **Suppressing a person
in Customer.io permanently DELETES their profile** and blocks the identifier from being re-added;
``unsuppress`` does not bring the profile back. Choose ``on_bounce="unsubscribe"`` to keep the profile
and only set ``unsubscribed=True`` (``client.identify(id, unsubscribed=True)``), or ``"none"`` to only
count the event and call your ``on_event`` callback.

With cioguard instrumenting the SDK in background mode (the default) the client call only enqueues an
operation, so the webhook answers in microseconds, well inside Customer.io's 4 s timeout. Every bounce
is also reported to the pitfall rules (CIO008 flags later emails to that person).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from cioguard.pitfalls import bounces

if TYPE_CHECKING:
    from cioguard.webhooks.receiver import WebhookEvent

logger = logging.getLogger("cioguard.webhooks")

BOUNCE_ACTIONS = ("suppress", "unsubscribe", "none")
#: Metrics that mean "stop emailing this person".
BOUNCE_METRICS = frozenset({"bounced", "spammed"})


class WebhookClient(Protocol):
    """The part of ``customerio.CustomerIO`` the receiver uses."""

    def suppress(self, customer_id: str) -> Any: ...

    def identify(self, id: str, **kwargs: Any) -> Any: ...


def person_identifier(data: Mapping[str, Any]) -> str | None:
    """The identifier to act on, as a Track API v1 path takes it: id, else ``cio_<cio_id>``, else email."""
    identifiers = data.get("identifiers")
    identifiers = identifiers if isinstance(identifiers, dict) else {}
    for value in (identifiers.get("id"), data.get("customer_id")):
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
            return str(value)
    cio_id = identifiers.get("cio_id")
    if isinstance(cio_id, str) and cio_id:
        return cio_id if cio_id.startswith("cio_") else f"cio_{cio_id}"
    for value in (identifiers.get("email"), data.get("email_address"), data.get("recipient")):
        if isinstance(value, str) and value:
            return value
    return None


def _emails(data: Mapping[str, Any]) -> set[str]:
    identifiers = data.get("identifiers")
    identifiers = identifiers if isinstance(identifiers, dict) else {}
    found = (identifiers.get("email"), data.get("recipient"), data.get("email_address"))
    return {value for value in found if isinstance(value, str) and value}


class BounceHandler:
    """Acts on ``bounced``/``spammed`` email events; thread-safe; never raises for a bad event."""

    def __init__(self, action: str, client: WebhookClient | None) -> None:
        self.action = action
        self._client = client
        self._lock = threading.Lock()
        if action != "none" and client is None:
            # Built now, not at the first bounce: without credentials every bounce's action would
            # fail after the event was answered 200 and marked seen. Say so at start-up, once.
            import cioguard

            try:
                self._client = cioguard.track_client()
            except ValueError as exc:  # ConfigurationError: a variable is missing or invalid
                logger.warning(
                    "cioguard.webhooks: on_bounce=%r acts through a Track API client, and "
                    "cioguard.track_client() cannot build one (%s): bounces will be counted but not "
                    "acted on. Pass client=CustomerIO(...), set CUSTOMERIO_SITE_ID and "
                    "CUSTOMERIO_TRACK_API_KEY, or use on_bounce='none'",
                    action,
                    exc,
                )
        # Tells CIO008 that bounces and complaints are handled in this process.
        bounces.register_receiver()

    def client(self) -> WebhookClient:
        """The client given at construction, else ``cioguard.track_client()`` (tried at construction,
        again here)."""
        with self._lock:
            if self._client is None:
                import cioguard

                self._client = cioguard.track_client()
            return self._client

    def handle(self, event: WebhookEvent) -> None:
        if event.metric not in BOUNCE_METRICS or event.object_type not in ("email", ""):
            return
        identifier = person_identifier(event.data)
        # CIO008 then flags later emails to this person, by id and by address.
        people = {value for value in (identifier, *_emails(event.data)) if value is not None}
        for value in sorted(people):
            bounces.record_bounce(value)
        if self.action == "none":
            return
        if identifier is None:
            logger.warning("cioguard.webhooks: %s event %s names no person", event.metric, event.event_id)
            return
        if self.action == "suppress":
            self.client().suppress(identifier)
        else:
            self.client().identify(identifier, unsubscribed=True)
