"""Where integrations keep their client: a cached factory, a lazy getter, a service with a property."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from functools import cached_property

from customerio import CustomerIO

_client: CustomerIO | None = None


def _credentials() -> tuple[str, str, str, int]:
    return (
        os.environ.get("SHAPES_SITE_ID", "site-id"),
        os.environ.get("SHAPES_API_KEY", "track-key"),
        os.environ.get("SHAPES_HOST", "track.customer.io"),
        int(os.environ.get("SHAPES_PORT", "443")),
    )


@functools.lru_cache(maxsize=1)
def get_cio() -> CustomerIO:
    site_id, api_key, host, port = _credentials()
    return CustomerIO(site_id, api_key, host=host, port=port)


def lazy_cio() -> CustomerIO:
    global _client
    if _client is None:
        _client = get_cio()  # shares the cached client: still one per credentials
    return _client


@dataclass(frozen=True)
class EventNames:
    signed_up: str = "signed_up"
    order_completed: str = "order_completed"
    account_deleted: str = "account_deleted"


EVENTS = EventNames()


class Notifier:
    """A service object holding the client the way many apps do."""

    @cached_property
    def client(self) -> CustomerIO:
        return get_cio()

    def welcome(self, user_id: str, email: str) -> None:
        self.client.identify(user_id, email=email, plan="free")
        self.client.track(user_id, EVENTS.signed_up, data={"source": "web"})
