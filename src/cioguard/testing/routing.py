"""Request routing and authentication for the emulator: (method, path, headers, body) -> Reply.

Track paths (``/api/v1/…``, ``/api/v2/…``) need HTTP Basic ``site_id:api_key``; App API paths
(``/v1/send/<kind>``) need ``Authorization: Bearer <app_key>``. A failed check answers 401 before
the body is looked at. The router is transport-free, so it can be tested without sockets; the
server calls :meth:`Router.handle` under the emulator lock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote

from cioguard.testing import app_api, v1, v2
from cioguard.testing.reply import Context, Reply, meta_error


class Router:
    """Dispatches one request; see the module docstring."""

    def __init__(self, site_id: str, api_key: str, app_key: str) -> None:
        self._basic = "Basic " + base64.b64encode(f"{site_id}:{api_key}".encode()).decode()
        self._bearer = f"Bearer {app_key}"

    def check_basic(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        try:  # compare decoded credentials, so "basic" casing and padding quirks do not matter
            scheme, _, token = authorization.partition(" ")
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = base64.b64decode(self._basic.partition(" ")[2])
        return scheme.lower() == "basic" and hmac.compare_digest(given, expected)

    def check_bearer(self, authorization: str | None) -> bool:
        # compare bytes: compare_digest refuses non-ASCII str, and headers arrive decoded as latin-1
        return authorization is not None and hmac.compare_digest(
            authorization.strip().encode("utf-8", "surrogateescape"), self._bearer.encode()
        )

    def is_authorised(self, path: str, authorization: str | None) -> bool:
        if path.startswith("/v1/"):
            return self.check_bearer(authorization)
        return self.check_basic(authorization)

    def handle(
        self, method: str, raw_path: str, authorization: str | None, body: bytes, ctx: Context
    ) -> Reply:
        path = raw_path.split("?", 1)[0]
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:2] == ["v1", "send"]:
            if not self.check_bearer(authorization):
                return meta_error(401, "Unauthorized request")
            if method != "POST" or len(parts) != 3:
                return meta_error(404, "not found")
            return app_api.handle_send(parts[2], body, ctx)
        if parts[:2] == ["api", "v2"]:
            if not self.check_basic(authorization):
                return Reply(
                    401, {"errors": [{"reason": "unauthorized", "field": "", "message": "unauthorized"}]}
                )
            if method != "POST" or len(parts) != 3 or parts[2] not in {"batch", "entity"}:
                return Reply(404, {"errors": [{"reason": "not_found", "field": "", "message": "not found"}]})
            return v2.handle(parts[2], body, ctx)
        if parts[:2] == ["api", "v1"]:
            if not self.check_basic(authorization):
                return meta_error(401, "Unauthorized request")
            return v1.handle(method, parts[2:], body, ctx)
        return meta_error(404, "not found")
