"""Pure decisions of the sender: backoff delays, ``Retry-After``, 207 bodies, endpoint names.

Nothing here does I/O or keeps threads; every function is deterministic given its inputs (the
random source is passed in), so the retry rules are unit-tested without sleeping.
"""

from __future__ import annotations

import email.utils
import random as _random
import re
import time
from collections.abc import Mapping, Sequence

import orjson

from cioguard.operations.model import Operation

#: Status codes worth another attempt; everything else non-2xx is final.
RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))

_APP_SENDS = frozenset({"email", "push", "sms", "whatsapp", "inbox_message", "in_app"})
_CUSTOMER_SUFFIX = {
    ("POST", "events"): "v1_track",
    ("PUT", "devices"): "v1_add_device",
    ("POST", "suppress"): "v1_suppress",
    ("POST", "unsuppress"): "v1_unsuppress",
}
_SEGMENT = re.compile(r"^/api/v1/customers/[^/]+(?:/(?P<rest>[^/]+)(?P<more>/.+)?)?$")


def endpoint_name(http_method: str, path: str) -> str:
    """A bounded metric label for a request path: ``v2_batch``, ``v1_track`` … or ``other``.

    Never returns the raw path (it holds customer ids)."""
    path = path.split("?", 1)[0]
    if path == "/api/v2/batch":
        return "v2_batch"
    if path == "/api/v2/entity":
        return "v2_entity"
    if path == "/api/v1/events":
        return "v1_track_anonymous"
    if path == "/api/v1/merge_customers":
        return "v1_merge_customers"
    if path.startswith("/v1/send/"):
        kind = path[len("/v1/send/") :]
        return f"app_send_{kind}" if kind in _APP_SENDS else "app_other"
    match = _SEGMENT.match(path)
    if match is None:
        return "other"
    rest, more = match.group("rest"), match.group("more")
    if rest is None:
        return {"PUT": "v1_identify", "DELETE": "v1_delete"}.get(http_method, "other")
    if rest == "devices" and more and http_method == "DELETE":
        return "v1_delete_device"
    if more:
        return "other"
    return _CUSTOMER_SUFFIX.get((http_method, rest), "other")


def join_v2(bodies: Sequence[bytes]) -> bytes:
    """The ``/api/v2/batch`` request body for already-encoded entries."""
    return b'{"batch":[' + b",".join(bodies) + b"]}"


def backoff_delay(attempt: int, base: float, cap: float, rng: _random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**attempt)]`` (``attempt`` counts from 0)."""
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str], maximum: float, now: float | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP date), clamped to
    ``[0, maximum]``; ``None`` when absent or unparseable (a hostile header cannot park us)."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), maximum)


def retry_reason(status: int | None, error_kind: str | None) -> str:
    """The ``retry`` metric reason: status_429|status_5xx|status_408|timeout|connection."""
    if status is None:
        return error_kind or "connection"
    if status == 429:
        return "status_429"
    if status == 408:
        return "status_408"
    return "status_5xx"


class PartialFailure:
    """The entries a 207 response rejected: index → (reason, field). Parsing never raises."""

    def __init__(self, body: bytes, count: int) -> None:
        self.rejected: dict[int, tuple[str, str]] = {}
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = {}
        errors = data.get("errors") if isinstance(data, dict) else None
        for error in errors if isinstance(errors, list) else ():
            if not isinstance(error, dict):
                continue
            index = error.get("batch_index")
            if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
                self.rejected[index] = (str(error.get("reason", ""))[:80], str(error.get("field", ""))[:80])


def group_methods(ops: Sequence[Operation]) -> dict[str, int]:
    """Count operations per SDK method name (for per-method counters)."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.method] = counts.get(op.method, 0) + 1
    return counts
