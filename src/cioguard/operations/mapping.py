"""The v1 → v2 mapping: what each SDK call means as a ``/api/v2/batch`` entry and as its v1 request.

Pure functions over a :class:`~cioguard.operations.model.Call`; :mod:`cioguard.operations.build`
serialises the result and picks the route. The choices (Track OpenAPI spec, ``track_v2`` tag):

- **identifiers**: the v1 path identifier is typed by shape, as Customer.io does: ``cio_<x>`` →
  ``{"cio_id": "<x>"}`` (v2 ``cio_id`` values carry no prefix; the spec's example is ``a3000001``
  where v1 needs ``cio_03000001``), a value containing ``@`` → ``{"email": …}``, anything else →
  ``{"id": str(value)}`` (ints become strings, as in the URL path).
- **identify**: ``attributes`` = the keyword attributes. The reserved v1 attribute ``_timestamp``
  (orders rapid updates) becomes the entry's ``timestamp`` (v2's field for exactly that) when it is
  an int or a datetime. A ``_timestamp`` of any other type, or a v1 ``cio_relationships`` attribute
  (``{action, relationships}``, which v2 splits into other actions), has no exact v2 form: such a
  call is sent as the v1 request, unchanged.
- **events**: ``track``/``backfill`` → ``action:"event"``, ``pageview`` → ``action:"page"``, with
  ``name``, ``id`` (the caller's ``id`` or a new ULID), ``timestamp`` when the SDK would send one, and
  ``attributes`` = the event data (v2 says ``attributes`` where v1 says ``data``).
- **add_device**: v1 ``device{id, platform, **data}`` → v2 ``device{token, platform, last_used?,
  attributes?}``. The SDK puts every extra keyword directly under ``device``; ``last_used`` and
  ``attributes`` are the documented device fields and keep their place, any other keyword
  (``device_os="17"``, what users mean as a device attribute) is moved into ``attributes`` (over a
  same-named key of an explicit ``attributes=`` dict), so v2 keeps what v1 could have kept. The
  SDK overwrites a user ``id`` keyword with the device id, so it is dropped. A ``token`` keyword or
  a non-dict ``attributes`` has no exact v2 form (sent as v1). ``delete_device`` →
  ``device{token}``. Device tokens are strings in v2 (``str()`` of an int id).
- **merge_customers** → ``action:"merge"`` with ``primary``/``secondary`` ``{type: value}`` (ids as
  strings) and no ``identifiers``. ``delete``/``suppress``/``unsuppress`` → the same-named actions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from cioguard.operations.calls import backfill_timestamp, event_timestamp
from cioguard.operations.model import Call
from cioguard.operations.serialize import to_unix_seconds

#: (http method, path, body, how errors name places: a root label, or a label per body key)
V1Request = tuple[str, str, dict[str, Any], str | dict[str, str]]

EVENT_LABELS = {"attributes": "data", "name": "name", "id": "id", "data": "data"}
IDENTIFY_LABELS = {"attributes": "attributes"}
DEVICE_LABELS = {"device": "device"}
NO_LABELS: dict[str, str] = {}
_V1 = "/api/v1"
# Keys of add_device(**data) that are not device attributes ("id" is overwritten by the SDK).
_DEVICE_FIELDS = frozenset({"id", "last_used", "attributes"})


def person_identifier(value: Any) -> tuple[str, str]:
    """``(type, value)`` of a v1 path identifier: ``("cio_id", "a1")``, ``("email", …)``, ``("id", …)``."""
    text = value if type(value) is str else str(value)
    if text.startswith("cio_"):
        return "cio_id", text[4:]
    if "@" in text:
        return "email", text
    return "id", text


def _escape(value: Any) -> str:
    return quote(str(value), safe="")  # the SDK's _url_encode


def _v2_text(value: Any) -> Any:
    # v2 wants string identifiers; keep anything that is not a plain int/float as it is.
    if type(value) in (int, float):
        return str(value)
    return value


# -- v2 entries (None = no exact v2 form: send the v1 request) -----------------------------------


def identify_entry(call: Call, kind: str, value: str) -> dict[str, Any] | None:
    attributes: dict[str, Any] = call.data
    entry: dict[str, Any] = {"type": "person", "action": "identify", "identifiers": {kind: value}}
    if "cio_relationships" in attributes:
        return None
    if "_timestamp" in attributes:
        stamp = attributes["_timestamp"]
        if isinstance(stamp, datetime):
            stamp = to_unix_seconds(stamp)
        elif type(stamp) is not int:
            return None
        attributes = {key: item for key, item in attributes.items() if key != "_timestamp"}
        entry["timestamp"] = stamp
    entry["attributes"] = attributes
    return entry


def simple_entry(call: Call, kind: str, value: str) -> dict[str, Any]:
    """``delete``/``suppress``/``unsuppress``."""
    return {"type": "person", "action": call.method, "identifiers": {kind: value}}


def add_device_entry(call: Call, kind: str, value: str) -> dict[str, Any] | None:
    extra: dict[str, Any] = call.extra or {}
    fields: dict[str, Any] = call.data
    device: dict[str, Any] = {"token": _token(extra["device_id"]), "platform": extra["platform"]}
    if not fields:
        return {"type": "person", "action": "add_device", "identifiers": {kind: value}, "device": device}
    given = fields.get("attributes")
    if "token" in fields or not (given is None or isinstance(given, dict)):
        return None
    attributes = dict(given or {})
    for key, item in fields.items():
        if key == "last_used":
            device["last_used"] = item
        elif key not in _DEVICE_FIELDS:
            attributes[key] = item
    if attributes or given is not None:
        device["attributes"] = attributes
    return {"type": "person", "action": "add_device", "identifiers": {kind: value}, "device": device}


def delete_device_entry(call: Call, kind: str, value: str) -> dict[str, Any]:
    extra: dict[str, Any] = call.extra or {}
    device = {"token": _token(extra["device_id"])}
    return {"type": "person", "action": "delete_device", "identifiers": {kind: value}, "device": device}


def _token(device_id: Any) -> Any:
    return device_id if type(device_id) is str else _v2_text(device_id)


def merge_entry(call: Call) -> dict[str, Any]:
    extra: dict[str, Any] = call.extra or {}
    return {
        "type": "person",
        "action": "merge",
        "primary": {extra["primary_id_type"]: _v2_text(extra["primary_id"])},
        "secondary": {extra["secondary_id_type"]: _v2_text(extra["secondary_id"])},
    }


# -- v1 requests (the SDK's own, plus the event id) ----------------------------------------------


def v1_event(call: Call, event_id: Any) -> V1Request:
    """``track``/``pageview``/``backfill``/``track_anonymous`` as the SDK posts them, with ``id``."""
    method = call.method
    body: dict[str, Any] = {"name": call.name, "data": call.data}
    if method == "pageview":
        body = {"type": "page", "name": call.name, "data": call.data}
    body["id"] = event_id
    if method == "backfill":
        body["timestamp"] = backfill_timestamp(call.timestamp)
    else:
        stamp = event_timestamp(call.timestamp)
        if stamp is not None:
            body["timestamp"] = stamp
    if method == "track_anonymous":
        anonymous_id = (call.extra or {}).get("anonymous_id")
        if anonymous_id is not None and anonymous_id != "":
            body["anonymous_id"] = anonymous_id
        return "POST", f"{_V1}/events", body, EVENT_LABELS
    return "POST", f"{_V1}/customers/{_escape(call.customer_id)}/events", body, EVENT_LABELS


def v1_request(call: Call) -> V1Request:
    """The SDK's request for a non-event Track call."""
    method = call.method
    extra: dict[str, Any] = call.extra or {}
    customer = f"{_V1}/customers/{_escape(call.customer_id)}"
    if method == "identify":
        return "PUT", customer, call.data, "attributes"
    if method == "delete":
        return "DELETE", customer, {}, NO_LABELS
    if method in ("suppress", "unsuppress"):
        return "POST", f"{customer}/{method}", {}, NO_LABELS
    if method == "add_device":
        device = {**call.data, "id": extra["device_id"], "platform": extra["platform"]}
        return "PUT", f"{customer}/devices", {"device": device}, DEVICE_LABELS
    if method == "delete_device":
        return "DELETE", f"{customer}/devices/{_escape(extra['device_id'])}", {}, NO_LABELS
    if method == "merge_customers":
        body = {
            "primary": {extra["primary_id_type"]: extra["primary_id"]},
            "secondary": {extra["secondary_id_type"]: extra["secondary_id"]},
        }
        return "POST", f"{_V1}/merge_customers", body, NO_LABELS
    raise ValueError(f"no v1 request for {method!r}")


def entry_shard_key(entry: dict[str, Any]) -> str:
    """The ordering key of a user's own v2 batch entry: its type and identifiers."""
    identifiers = entry.get("identifiers")
    if entry.get("action") == "merge":
        identifiers = entry.get("primary")
    if not isinstance(identifiers, dict) or not identifiers:
        return ""
    if entry.get("type", "person") == "person" and len(identifiers) == 1:
        ((kind, value),) = identifiers.items()
        return f"{kind}:{value}"
    parts = ":".join(f"{key}={identifiers[key]}" for key in sorted(identifiers, key=str))
    return f"{entry.get('type')}:{parts}"
