"""Track API v1 handlers of the emulator (the paths the ``customerio`` SDK 3.x uses).

=========  =====================================  ==============================
method     path under ``/api/v1``                 SDK method
=========  =====================================  ==============================
PUT        ``customers/{id}``                     ``identify``
DELETE     ``customers/{id}``                     ``delete``
POST       ``customers/{id}/events``              ``track``, ``pageview``, ``backfill``
POST       ``events``                             ``track_anonymous``
PUT        ``customers/{id}/devices``             ``add_device``
DELETE     ``customers/{id}/devices/{token}``     ``delete_device``
POST       ``customers/{id}/suppress|unsuppress`` ``suppress`` / ``unsuppress``
POST       ``merge_customers``                    ``merge_customers``
GET        ``accounts/region``                    (not wrapped by the SDK)
=========  =====================================  ==============================

Success is ``200 {}``; validation errors are ``400 {"meta":{"errors":["…"]}}``.
"""

from __future__ import annotations

import json
from typing import Any

from cioguard.testing.records import Device, Ident
from cioguard.testing.reply import Context, Reply, v1_error
from cioguard.testing.state import classify

ID_TYPES = ("id", "email", "cio_id")
PLATFORMS = frozenset({"ios", "android"})
MAX_ID_BYTES = 150
MAX_EVENT_NAME_BYTES = 100
OK = Reply(200, {})


class BadRequest(Exception):
    """A v1 validation failure; its message goes into ``meta.errors``."""


def handle(method: str, parts: list[str], body: bytes, ctx: Context) -> Reply:
    """Handle ``/api/v1/<parts…>``."""
    try:
        if parts == ["accounts", "region"] and method == "GET":
            return Reply(200, {"url": ctx.base_url, "data_center": "us", "environment_id": 1})
        data = _parse(body)
        if parts == ["events"] and method == "POST":
            return _event(None, data, ctx)
        if parts == ["merge_customers"] and method == "POST":
            return _merge(data, ctx)
        if len(parts) >= 2 and parts[0] == "customers":
            return _customer(method, _ident(parts[1]), parts[2:], data, ctx)
    except BadRequest as exc:
        return v1_error(400, str(exc))
    return v1_error(404, "not found")


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"malformed JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def _ident(value: str) -> Ident:
    if not value:
        raise BadRequest("identifier cannot be blank")
    if len(value.encode()) > MAX_ID_BYTES:
        raise BadRequest(f"identifier is longer than {MAX_ID_BYTES} bytes")
    return classify(value)


def _customer(method: str, ident: Ident, rest: list[str], data: dict[str, Any], ctx: Context) -> Reply:
    store = ctx.store
    if not rest and method == "PUT":
        _count(ctx)
        if store is not None:
            store.identify(ident, data)
        return OK
    if not rest and method == "DELETE":
        _count(ctx)
        if store is not None:
            store.delete(ident)
        return OK
    if rest == ["events"] and method == "POST":
        return _event(ident, data, ctx)
    if rest == ["devices"] and method == "PUT":
        device = _device(data.get("device"))
        _count(ctx)
        if store is not None:
            store.add_device(ident, device)
        return OK
    if len(rest) == 2 and rest[0] == "devices" and method == "DELETE":
        _count(ctx)
        if store is not None:
            store.delete_device(ident, rest[1])
        return OK
    if len(rest) == 1 and rest[0] in {"suppress", "unsuppress"} and method == "POST":
        _count(ctx)
        if store is not None:
            store.suppress(ident, rest[0] == "suppress")
        return OK
    return v1_error(404, "not found")


def _event(ident: Ident | None, data: dict[str, Any], ctx: Context) -> Reply:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("event name is required")
    if len(name.strip().encode()) > MAX_EVENT_NAME_BYTES:
        raise BadRequest(f"event name is longer than {MAX_EVENT_NAME_BYTES} bytes")
    kind = data.get("type", "event")
    if kind not in {"event", "page", "screen"}:
        raise BadRequest("type must be one of event, page, screen")
    payload = data.get("data", {})
    if payload is not None and not isinstance(payload, dict):
        raise BadRequest("data must be an object")
    anonymous_id = data.get("anonymous_id")
    _count(ctx, event=True)
    if ctx.store is not None:
        fields = {
            "name": name.strip(),
            "type": kind,
            "data": payload or {},
            "id": data.get("id"),
            "timestamp": data.get("timestamp"),
            "via": "v1",
            "received_at": ctx.now,
        }
        ctx.store.event(ident, None if ident is not None else anonymous_id, fields)
    return OK


def _device(device: Any) -> Device:
    if not isinstance(device, dict):
        raise BadRequest("device is required")
    token, platform = device.get("id"), device.get("platform")
    if not isinstance(token, str) or not token:
        raise BadRequest("device.id is required")
    if platform not in PLATFORMS:
        raise BadRequest("device.platform must be ios or android")
    attributes = dict(device.get("attributes") or {})
    # the SDK puts add_device(**data) directly under "device": keep unknown keys as attributes
    attributes.update(
        {k: v for k, v in device.items() if k not in {"id", "platform", "last_used", "attributes"}}
    )
    return Device(token=token, platform=platform, last_used=device.get("last_used"), attributes=attributes)


def _merge(data: dict[str, Any], ctx: Context) -> Reply:
    primary, secondary = merge_side(data.get("primary")), merge_side(data.get("secondary"))
    if primary is None or secondary is None:
        raise BadRequest("primary and secondary must each hold exactly one of id, email, cio_id")
    _count(ctx)
    if ctx.store is not None:
        ctx.store.merge(primary, secondary, "v1")
    return OK


def merge_side(value: Any) -> Ident | None:
    """``{"id"|"email"|"cio_id": value}`` -> Ident, or None when the shape is wrong."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, ident),) = value.items()
    if kind not in ID_TYPES or not isinstance(ident, str | int) or ident == "":
        return None
    return (kind, str(ident))


def _count(ctx: Context, event: bool = False) -> None:
    ctx.counts["operations"] += 1
    if event:
        ctx.counts["events"] += 1
