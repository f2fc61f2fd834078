"""The :class:`~cioguard.operations.model.Endpoint` of each SDK client, cached.

::

    endpoints = EndpointCache(track_url=None, api_url=None)
    endpoint = endpoints.track(client)      # CustomerIO client -> Endpoint (Track API)
    endpoint = endpoints.app(api_client)    # APIClient -> Endpoint (App API)

Keyed on the client's own credential fields (not the client object), so a client whose credentials
change still maps right and many clients with the same credentials share one Endpoint. ``track_url``
/ ``api_url`` (the ``instrument()`` options) replace the base URL the client was built for; a
path in either (a gateway under ``/cio``, the SDK's ``url_prefix``) is kept.
"""

from __future__ import annotations

import threading
from typing import Any

from cioguard.operations.build import app_endpoint, track_endpoint
from cioguard.operations.endpoints import APP_PREFIXES
from cioguard.operations.model import Endpoint

#: Credentials are few; bound the cache anyway (cleared when full).
_MAX_ENDPOINTS = 1_000


class EndpointCache:
    """Endpoint per client credentials; thread-safe (reads lock-free, writes under a lock)."""

    def __init__(self, track_url: str | None, api_url: str | None) -> None:
        self._track_url = track_url
        self._api_url = api_url
        self._endpoints: dict[tuple[str, Any, Any, Any], Endpoint] = {}
        self._lock = threading.Lock()

    def track(self, client: Any) -> Endpoint:
        """The Track API endpoint of a ``CustomerIO`` client."""
        key = ("track", client.site_id, client.api_key, client.base_url)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            base = self._track_url or client.base_url
            endpoint = self._remember(key, track_endpoint(client.site_id, client.api_key, base, "track"))
        return endpoint

    def app(self, client: Any) -> Endpoint:
        """The App API endpoint of an ``APIClient``."""
        key = ("app", None, client.key, client.url)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            # The SDK appends /v1/send/... to the client's url as it is; the option is a base URL.
            prefixes = APP_PREFIXES if self._api_url else ()
            base = self._api_url or client.url
            endpoint = self._remember(key, app_endpoint(client.key, base, "app", prefixes))
        return endpoint

    def _remember(self, key: tuple[str, Any, Any, Any], endpoint: Endpoint) -> Endpoint:
        with self._lock:
            if len(self._endpoints) >= _MAX_ENDPOINTS:
                self._endpoints.clear()
            return self._endpoints.setdefault(key, endpoint)
