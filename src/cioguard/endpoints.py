"""Bounded names for Customer.io HTTP endpoints, used as the ``endpoint`` metric label.

A URL path carries customer ids and emails, so it must never become a label. :func:`endpoint_name`
maps a request to one of a fixed set of names (``v2_batch``, ``v1_track``, ``app_send_email`` …);
anything unrecognised becomes ``other``.

>>> endpoint_name("POST", "/api/v1/customers/u%401.com/events")
'v1_track'
>>> endpoint_name("PUT", "https://track.customer.io/api/v1/customers/42")
'v1_identify'
"""

from __future__ import annotations

from urllib.parse import urlsplit

_APP_SENDS = frozenset({"email", "push", "sms", "whatsapp", "inbox_message", "in_app"})

ENDPOINT_NAMES = frozenset(
    {
        "v2_batch",
        "v2_entity",
        "v1_identify",
        "v1_delete",
        "v1_track",
        "v1_track_anonymous",
        "v1_add_device",
        "v1_delete_device",
        "v1_suppress",
        "v1_unsuppress",
        "v1_merge",
        "v1_region",
        "other",
    }
    | {f"app_send_{kind}" for kind in _APP_SENDS}
)


def endpoint_name(http_method: str, url_or_path: str) -> str:
    """The bounded endpoint name for a request (see the module docstring)."""
    path = urlsplit(url_or_path).path if "://" in url_or_path else url_or_path.split("?", 1)[0]
    parts = [part for part in path.split("/") if part]
    method = http_method.upper()
    if parts[:2] == ["api", "v2"] and len(parts) == 3 and parts[2] in {"batch", "entity"}:
        return f"v2_{parts[2]}"
    if parts[:2] == ["v1", "send"] and len(parts) == 3 and parts[2] in _APP_SENDS:
        return f"app_send_{parts[2]}"
    if parts[:2] != ["api", "v1"]:
        return "other"
    rest = parts[2:]
    if rest == ["events"]:
        return "v1_track_anonymous"
    if rest == ["merge_customers"]:
        return "v1_merge"
    if rest == ["accounts", "region"]:
        return "v1_region"
    if not rest or rest[0] != "customers" or len(rest) < 2:
        return "other"
    tail = rest[2:]
    if not tail:
        return {"PUT": "v1_identify", "DELETE": "v1_delete"}.get(method, "other")
    if tail == ["events"]:
        return "v1_track"
    if tail == ["devices"]:
        return "v1_add_device"
    if len(tail) == 2 and tail[0] == "devices":
        return "v1_delete_device"
    if tail == ["suppress"]:
        return "v1_suppress"
    if tail == ["unsuppress"]:
        return "v1_unsuppress"
    return "other"
