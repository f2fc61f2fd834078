"""Track API v2 handlers of the emulator: ``POST /api/v2/entity`` and ``POST /api/v2/batch``.

Limits (Customer.io documents "< 500 KB" per batch request, "< 32 KB" per entity request and per
batch entry; the emulator uses decimal kilobytes):

* a request body of ``BATCH_LIMIT`` (500 000) bytes or more to ``/batch``, or of ``ENTITY_LIMIT``
  (32 000) bytes or more to ``/entity``, answers **413** ``{"errors":[{reason,field,message}]}``;
* a batch entry whose compact JSON is larger than ``ENTRY_LIMIT`` (32 000) bytes is invalid.

Invalid batch entries answer **207** ``{"errors":[{"batch_index","reason","field","message"}]}``
while every valid entry is applied. A malformed body, or an invalid ``/entity`` payload, answers
**400** ``{"errors":[{"reason","field","message"}]}``. Person entries need ``identifiers`` with exactly
one of ``id``/``email``/``cio_id`` (``merge`` instead needs ``primary`` and ``secondary``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from cioguard.testing.records import Device, Ident
from cioguard.testing.reply import Context, Reply
from cioguard.testing.v1 import MAX_EVENT_NAME_BYTES, PLATFORMS, merge_side

BATCH_LIMIT = 500_000
ENTITY_LIMIT = 32_000
ENTRY_LIMIT = 32_000
ID_KINDS = ("id", "email", "cio_id")
PERSON_ACTIONS = frozenset(
    {
        "identify",
        "event",
        "page",
        "screen",
        "delete",
        "suppress",
        "unsuppress",
        "add_device",
        "delete_device",
        "merge",
        "add_relationships",
        "delete_relationships",
    }
)
OBJECT_ACTIONS = frozenset(
    {"identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships"}
)
EVENT_ACTIONS = frozenset({"event", "page", "screen"})


class Invalid(Exception):
    """One invalid entry or request: ``reason`` and ``field`` as in Customer.io's error objects."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.field, self.message = reason, field, message

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "field": self.field, "message": self.message}


def handle(kind: str, body: bytes, ctx: Context) -> Reply:
    """Handle ``/api/v2/batch`` (``kind="batch"``) or ``/api/v2/entity``."""
    limit = BATCH_LIMIT if kind == "batch" else ENTITY_LIMIT
    if len(body) >= limit:
        error = Invalid("too_large", "", f"request body is {len(body)} bytes; the limit is < {limit} bytes")
        return Reply(413, {"errors": [error.as_dict()]})
    try:
        data = _loads(body)
    except ValueError as exc:
        return _bad(Invalid("invalid", "", f"malformed JSON body: {exc}"))
    if kind == "entity":
        try:
            validate(data)
        except Invalid as exc:
            return _bad(exc)
        _count(data, ctx)
        if ctx.store is not None:
            apply(data, ctx)
        return Reply(200, {})
    if not isinstance(data, dict) or not isinstance(data.get("batch"), list) or not data["batch"]:
        return _bad(Invalid("required", "batch", 'the body must be {"batch": [at least one entry]}'))
    errors = []
    operations = events = 0
    for index, entry in enumerate(data["batch"]):
        try:
            if not _well_formed(entry):
                validate(entry)  # the slow path also finds the reason
            size = _size(entry)
            if size > ENTRY_LIMIT:
                raise Invalid("too_large", "", f"entry is {size} bytes; the limit is {ENTRY_LIMIT} bytes")
        except Invalid as exc:
            errors.append({"batch_index": index, **exc.as_dict()})
            continue
        operations += 1
        if entry["type"] == "person" and entry["action"] in EVENT_ACTIONS:
            events += 1
        if ctx.store is not None:
            apply(entry, ctx)
    # counted once per request: the sink mode's throughput depends on this loop staying lean
    ctx.counts["operations"] += operations
    ctx.counts["events"] += events
    ctx.counts["invalid_entries"] += len(errors)
    if errors:
        return Reply(207, {"errors": errors})
    return Reply(200, {})


def _well_formed(entry: Any) -> bool:
    """A fast check that accepts only common, certainly valid person entries (False = look closer)."""
    if type(entry) is not dict or entry.get("type") != "person":
        return False
    ids = entry.get("identifiers")
    if type(ids) is not dict or len(ids) != 1:
        return False
    for kind, value in ids.items():
        if kind not in ID_KINDS or type(value) is not str or not value:
            return False
    attributes = entry.get("attributes")
    if attributes is not None and type(attributes) is not dict:
        return False
    action = entry.get("action")
    if action in EVENT_ACTIONS:
        name = entry.get("name")
        # 25 characters are at most 100 UTF-8 bytes; longer names take the exact slow path
        return type(name) is str and len(name) <= 25 and name.strip() != ""
    return action in {"identify", "delete", "suppress", "unsuppress"}


def _loads(body: bytes) -> Any:
    # orjson is ~2x faster on 500 KB bodies (the sink mode's budget); json accepts what it refuses
    # (integers over 64 bits), so fall back to it before calling a body malformed
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _size(entry: Any) -> int:
    """Bytes of the entry as compact UTF-8 JSON."""
    try:
        return len(orjson.dumps(entry))
    except TypeError:  # an integer over 64 bits
        return len(json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode())


def _bad(error: Invalid) -> Reply:
    return Reply(400, {"errors": [error.as_dict()]})


def validate(entry: Any) -> None:
    """Raise :class:`Invalid` unless ``entry`` is a well-formed v2 entity."""
    if not isinstance(entry, dict):
        raise Invalid("invalid", "", "an entry must be a JSON object")
    kind, action = entry.get("type"), entry.get("action")
    if kind not in {"person", "object", "delivery"}:
        raise Invalid("invalid" if kind else "required", "type", "type must be person, object or delivery")
    if kind == "object":
        if action not in OBJECT_ACTIONS:
            raise Invalid("invalid", "action", f"unknown object action {action!r}")
        ids = entry.get("identifiers")
        if not isinstance(ids, dict) or not ids.get("object_type_id") or not ids.get("object_id"):
            raise Invalid("required", "identifiers", "objects need identifiers.object_type_id and object_id")
        return
    if kind == "delivery":
        ids = entry.get("identifiers")
        if action != "event":
            raise Invalid("invalid", "action", "the only delivery action is event")
        if not isinstance(ids, dict) or not ids.get("id"):
            raise Invalid("required", "identifiers", "deliveries need identifiers.id")
        _name(entry)
        return
    if action not in PERSON_ACTIONS:
        raise Invalid("invalid" if action else "required", "action", f"unknown person action {action!r}")
    if action == "merge":
        if "identifiers" in entry:
            raise Invalid("invalid", "identifiers", "merge takes primary and secondary, not identifiers")
        for side in ("primary", "secondary"):
            if merge_side(entry.get(side)) is None:
                raise Invalid("invalid", side, f"{side} must hold exactly one of id, email, cio_id")
        return
    person_ident(entry)
    if action in EVENT_ACTIONS:
        _name(entry)
    attributes = entry.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise Invalid("invalid", "attributes", "attributes must be an object")
    if action in {"add_device", "delete_device"}:
        device = entry.get("device")
        if not isinstance(device, dict) or not isinstance(device.get("token"), str) or not device["token"]:
            raise Invalid("required", "device.token", "device.token is required")
        if action == "add_device" and device.get("platform") not in PLATFORMS:
            raise Invalid("invalid", "device.platform", "device.platform must be ios or android")
    if action in {"add_relationships", "delete_relationships"} and not isinstance(
        entry.get("cio_relationships"), list
    ):
        raise Invalid("required", "cio_relationships", "cio_relationships must be a list")


def person_ident(entry: dict[str, Any]) -> Ident:
    ids = entry.get("identifiers")
    if not isinstance(ids, dict):
        raise Invalid("required", "identifiers", "identifiers is required")
    present = [k for k in ids if k in ID_KINDS]
    if len(ids) != 1 or len(present) != 1:
        raise Invalid("invalid", "identifiers", "identifiers must hold exactly one of id, email, cio_id")
    value = ids[present[0]]
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise Invalid("invalid", f"identifiers.{present[0]}", "the identifier must be a non-empty string")
    return (present[0], str(value))


def _name(entry: dict[str, Any]) -> None:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("required", "name", "name is required")
    if len(name.strip().encode()) > MAX_EVENT_NAME_BYTES:
        raise Invalid("too_large", "name", f"name is longer than {MAX_EVENT_NAME_BYTES} bytes")


def _count(entry: dict[str, Any], ctx: Context) -> None:
    ctx.counts["operations"] += 1
    if entry["type"] == "person" and entry["action"] in EVENT_ACTIONS:
        ctx.counts["events"] += 1


def apply(entry: dict[str, Any], ctx: Context) -> None:
    """Apply a validated entry to the store (not called in sink mode)."""
    action = entry["action"]
    is_event = action in EVENT_ACTIONS and entry["type"] == "person"
    store = ctx.store
    if store is None:
        return
    if entry["type"] == "object":
        store.object_action(entry["identifiers"], action, entry)
        return
    if entry["type"] == "delivery":
        store.delivery_events.append(dict(entry))
        return
    if action == "merge":
        primary, secondary = merge_side(entry["primary"]), merge_side(entry["secondary"])
        assert primary is not None
        assert secondary is not None
        store.merge(primary, secondary, "v2")
        return
    ident = person_ident(entry)
    attributes = entry.get("attributes") or {}
    if is_event:
        fields = {
            "name": entry["name"].strip(),
            "type": action,
            "data": attributes,
            "id": entry.get("id"),
            "timestamp": entry.get("timestamp"),
            "via": "v2",
            "received_at": ctx.now,
        }
        store.event(ident, None, fields)
    elif action == "identify":
        store.identify(ident, attributes)
        if isinstance(entry.get("cio_relationships"), list):
            store.add_relationships(ident, entry["cio_relationships"])
    elif action == "delete":
        store.delete(ident)
    elif action in {"suppress", "unsuppress"}:
        store.suppress(ident, action == "suppress")
    elif action == "add_device":
        device = entry["device"]
        store.add_device(
            ident,
            Device(
                device["token"],
                device.get("platform"),
                device.get("last_used"),
                dict(device.get("attributes") or {}),
            ),
        )
    elif action == "delete_device":
        store.delete_device(ident, entry["device"]["token"])
    elif action == "add_relationships":
        store.add_relationships(ident, entry["cio_relationships"])
    elif action == "delete_relationships":
        store.delete_relationships(ident, entry["cio_relationships"])
