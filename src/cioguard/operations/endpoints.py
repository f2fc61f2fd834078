"""Endpoints (where and as whom operations are sent) built from SDK client settings.

>>> track_endpoint("site", "key", "https://track.customer.io/api/v1").base_url
'https://track.customer.io'
>>> app_endpoint("secret", "api.customer.io").auth_header
'Bearer secret'

``track_endpoint`` sends HTTP Basic ``site_id:api_key`` exactly as the SDK's ``requests`` session
does (``str()`` of non-strings, latin-1 bytes), ``app_endpoint`` a Bearer header; ``base_url`` is
reduced to scheme + host [+ port] (:func:`origin`).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from cioguard.operations.model import Endpoint

__all__ = ["app_endpoint", "origin", "track_endpoint"]


def origin(url: str) -> str:
    """Scheme + host [+ port] of ``url``: ``https://track.customer.io/api/v1`` → ``https://track.customer.io``.

    A bare host (``track.customer.io``) gets ``https://``, as the SDK's ``CustomerIO(host=…)`` does.
    """
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _credential(value: Any) -> bytes:
    # requests' HTTPBasicAuth: str() of a non-string, latin-1 bytes.
    text = value if isinstance(value, str) else str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def track_endpoint(site_id: Any, api_key: Any, base_url: str, label: str = "track") -> Endpoint:
    """The Track API endpoint for these credentials (HTTP Basic ``site_id:api_key``, like the SDK)."""
    token = base64.b64encode(_credential(site_id) + b":" + _credential(api_key)).decode("ascii")
    return Endpoint(api="track", base_url=origin(base_url), auth_header="Basic " + token, label=label)


def app_endpoint(key: Any, base_url: str, label: str = "app") -> Endpoint:
    """The App API endpoint for this key (``Authorization: Bearer <key>``, like the SDK)."""
    return Endpoint(api="app", base_url=origin(base_url), auth_header=f"Bearer {key}", label=label)
