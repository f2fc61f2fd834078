"""Customer.io reporting-webhook signatures: build and check them.

Customer.io signs every reporting-webhook request with the webhook's signing key: the header
``X-CIO-Timestamp`` carries Unix seconds and ``X-CIO-Signature`` the HMAC-SHA256 of
``v0:<timestamp>:<raw body>``, as lowercase hex. Use :func:`sign` in your own tests to build
requests the receiver accepts::

    from cioguard.webhooks import sign, verify

    body = b'{"event_id": "01H...", "metric": "delivered", "data": {}}'
    ts = int(time.time())
    headers = {"X-CIO-Timestamp": str(ts), "X-CIO-Signature": sign(KEY, ts, body)}
    verify(KEY, str(ts), headers["X-CIO-Signature"], body, now=time.time())   # -> None or raises

:func:`verify` raises :class:`SignatureError` whose ``reason`` is the bounded label counted in
``customerio_webhook_rejected_total{reason}``.
"""

from __future__ import annotations

import hashlib
import hmac

#: Default window (seconds) a timestamp may differ from the receiver's clock, either way.
DEFAULT_TOLERANCE = 300.0


class SignatureError(Exception):
    """A request whose signature or timestamp cannot be trusted.

    ``reason`` is one of ``missing_signature``, ``timestamp``, ``stale`` and ``signature``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _key_bytes(signing_key: str | bytes) -> bytes:
    return signing_key.encode("utf-8") if isinstance(signing_key, str) else signing_key


def sign(signing_key: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-CIO-Signature`` value Customer.io sends for ``body`` at ``timestamp`` (lowercase hex)."""
    message = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return hmac.new(_key_bytes(signing_key), message, hashlib.sha256).hexdigest()


def verify(
    signing_key: str | bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    """Check one request's headers against its raw body; return the timestamp as an int.

    Args:
        signing_key: the webhook's signing key (Customer.io: Data & Integrations → Reporting webhooks).
        timestamp: the ``X-CIO-Timestamp`` header value (``None`` when absent).
        signature: the ``X-CIO-Signature`` header value (``None`` when absent).
        body: the raw request body, exactly as received (never re-serialised JSON).
        now: the current Unix time in seconds.
        tolerance: the largest accepted ``|now - timestamp|`` in seconds (default 300).

    Raises:
        SignatureError: a missing header, a malformed timestamp, a timestamp outside the window, or a
            signature that does not match (compared in constant time).
    """
    if not timestamp or not signature:
        raise SignatureError("missing_signature", "X-CIO-Timestamp or X-CIO-Signature header is missing")
    text = timestamp.strip()
    # Only plain decimal seconds: int() would also accept "1_700_000_000" or " +17e8"-like forms.
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError("timestamp", "X-CIO-Timestamp is not Unix seconds")
    seconds = int(text)
    if abs(now - seconds) > tolerance:
        raise SignatureError("stale", f"X-CIO-Timestamp is more than {tolerance:g} s away from now")
    expected = sign(signing_key, text, body).encode("ascii")
    # compare_digest needs equal types; non-ASCII header text becomes bytes that simply do not match.
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, given):
        raise SignatureError("signature", "X-CIO-Signature does not match the body")
    return seconds
