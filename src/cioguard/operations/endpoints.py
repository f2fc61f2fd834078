"""Endpoints (where and as whom operations are sent) built from SDK client settings.

>>> track_endpoint("site", "key", "https://track.customer.io/api/v1").base_url
'https://track.customer.io'
>>> track_endpoint("site", "key", "https://gateway.example.com/cio/api/v1").base_url
'https://gateway.example.com/cio'
>>> app_endpoint("secret", "api.customer.io").auth_header
'Bearer secret'

``track_endpoint`` sends HTTP Basic ``site_id:api_key`` exactly as the SDK's ``requests`` session
does (``str()`` of non-strings, latin-1 bytes), ``app_endpoint`` a Bearer header; ``base_url`` is
what the API's own paths (``/api/v2/batch``, ``/api/v1/...``, ``/v1/send/...``) hang from: scheme,
host, port and any path in front of them (:func:`mount`), so a gateway under a path still gets
every request the SDK would have sent it.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from cioguard.operations.model import Endpoint

__all__ = ["app_endpoint", "mount", "origin", "track_endpoint"]


def origin(url: str) -> str:
    """Scheme + host [+ port] of ``url``: ``https://track.customer.io/api/v1`` → ``https://track.customer.io``.

    A bare host (``track.customer.io``) gets ``https://``, as the SDK's ``CustomerIO(host=…)`` does.
    """
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def mount(url: str, api_prefixes: tuple[str, ...] = ()) -> str:
    """:func:`origin` plus the path before the API's own: ``https://gw.example.com/cio/api/v1``
    with ``api_prefixes=("/api/v1", "/api/v2")`` → ``https://gw.example.com/cio``.

    The path is kept as written (the SDK percent-encodes nothing in it); only its trailing ``/``
    and one trailing API prefix are removed.
    """
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for prefix in api_prefixes:
        if path.endswith(prefix):
            path = path[: -len(prefix)]
            break
    return f"{parts.scheme}://{parts.netloc}{path}"


#: The Track API's own path prefixes (the SDK's ``url_prefix`` default is ``/api/v1``).
TRACK_PREFIXES = ("/api/v1", "/api/v2")
#: The App API's (its paths are ``/v1/send/...``): removed from the ``api_url`` option only, since
#: the SDK's ``APIClient(url=...)`` puts its paths right after whatever ``url`` holds.
APP_PREFIXES = ("/v1",)


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
    base = mount(base_url, TRACK_PREFIXES)
    return Endpoint(api="track", base_url=base, auth_header="Basic " + token, label=label)


def app_endpoint(
    key: Any, base_url: str, label: str = "app", api_prefixes: tuple[str, ...] = APP_PREFIXES
) -> Endpoint:
    """The App API endpoint for this key (``Authorization: Bearer <key>``, like the SDK)."""
    base = mount(base_url, api_prefixes)
    return Endpoint(api="app", base_url=base, auth_header=f"Bearer {key}", label=label)
