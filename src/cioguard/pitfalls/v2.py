"""A v2 ``batch`` entry as the v1 call the rules know (``identify``, ``track``, ``merge_customers`` …).

Used by :meth:`cioguard.pitfalls.calls.CallRules._batch`::

    inner = from_v2({"type": "person", "action": "event", "identifiers": {"id": "42"}, "name": "x"})
    call, email_typed = inner    # Call("track", "42", "x", None, None), False
"""

from __future__ import annotations

from typing import Any

from cioguard.operations.model import Call

_V2_ACTIONS = {
    "identify": "identify",
    "event": "track",
    "page": "pageview",
    "screen": "pageview",
    "delete": "delete",
    "suppress": "suppress",
    "unsuppress": "unsuppress",
    "add_device": "add_device",
    "delete_device": "delete_device",
}


def from_v2(entry: Any) -> tuple[Call, bool] | None:
    """A v2 batch entry as the equivalent v1 call, plus whether its identifier is typed ``email``."""
    if not isinstance(entry, dict) or entry.get("type") != "person":
        return None
    action = entry.get("action")
    if action == "merge":
        primary, secondary = entry.get("primary"), entry.get("secondary")
        extra: dict[str, Any] = {}
        for side, value in (("primary", primary), ("secondary", secondary)):
            if isinstance(value, dict) and len(value) == 1:
                ((kind, ident),) = value.items()
                extra[f"{side}_id_type"], extra[f"{side}_id"] = kind, ident
        return Call("merge_customers", extra=extra), False
    method = _V2_ACTIONS.get(action) if isinstance(action, str) else None
    identifiers = entry.get("identifiers")
    if method is None or not isinstance(identifiers, dict) or len(identifiers) != 1:
        return None
    ((kind, ident),) = identifiers.items()
    attributes = entry.get("attributes")
    if method == "identify" and kind == "email" and isinstance(attributes, dict | None):
        attributes = {**(attributes or {}), "email": ident}  # identified by email: it has one
    return Call(method, ident, entry.get("name"), attributes, entry.get("timestamp")), kind != "id"
