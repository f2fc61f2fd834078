"""App API (transactional messages) handlers of the emulator: ``POST /v1/send/<kind>``.

Kinds: ``email``, ``push``, ``sms``, ``whatsapp``, ``inbox_message``, ``in_app``. Success answers
``200 {"delivery_id": "<str>", "queued_at": <unix s>}``; errors answer ``{"meta":{"error":"…"}}``
(401 for a wrong key, 400 for a missing required field, 404 for an unknown kind).

Required fields: ``email`` needs ``to`` and either ``transactional_message_id`` or all of
``body``, ``subject`` and ``from``; ``sms`` and ``whatsapp`` need ``to``; every kind but ``email``
needs ``transactional_message_id`` and ``identifiers``. ``identifiers``, when given, must hold
exactly one of ``id``, ``email``, ``cio_id``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cioguard.testing.records import Delivery
from cioguard.testing.reply import Context, Reply, meta_error

KINDS = frozenset({"email", "push", "sms", "whatsapp", "inbox_message", "in_app"})
MAX_EMAIL_RECIPIENTS = 15


def handle_send(kind: str, body: bytes, ctx: Context) -> Reply:
    if kind not in KINDS:
        return meta_error(404, f"unknown message kind {kind!r}")
    try:
        payload = json.loads(body) if body.strip() else None
    except ValueError as exc:
        return meta_error(400, f"malformed JSON body: {exc}")
    if not isinstance(payload, dict):
        return meta_error(400, "the request body must be a JSON object")
    problem = _problem(kind, payload)
    if problem is not None:
        return meta_error(400, problem)
    ctx.counts["deliveries"] += 1
    sequence = ctx.counts["deliveries"]
    # shaped like Customer.io's base64 delivery ids, deterministic for a given request order
    delivery_id = base64.b64encode(f"fakecio-{kind}-{sequence:010d}".encode()).decode()
    queued_at = int(ctx.wall_time)
    if ctx.store is not None:
        ctx.store.deliveries.append(Delivery(kind, payload, delivery_id, queued_at))
    return Reply(200, {"delivery_id": delivery_id, "queued_at": queued_at})


def _problem(kind: str, payload: dict[str, Any]) -> str | None:
    identifiers = payload.get("identifiers")
    if identifiers is not None and (
        not isinstance(identifiers, dict)
        or len(identifiers) != 1
        or next(iter(identifiers)) not in {"id", "email", "cio_id"}
        or identifiers[next(iter(identifiers))] in (None, "")
    ):
        return "identifiers must hold exactly one of id, email, cio_id"
    if kind == "email":
        if not payload.get("to"):
            return "to is required"
        if not payload.get("transactional_message_id") and not all(
            payload.get(name) for name in ("body", "subject", "from")
        ):
            return "transactional_message_id is required unless body, subject and from are given"
        recipients = sum(
            len(str(payload.get(f) or "").split(",")) for f in ("to", "cc", "bcc") if payload.get(f)
        )
        if recipients > MAX_EMAIL_RECIPIENTS:
            return f"at most {MAX_EMAIL_RECIPIENTS} recipients across to, cc and bcc"
        return None
    if kind in {"sms", "whatsapp"} and not payload.get("to"):
        return "to is required"
    if payload.get("transactional_message_id") in (None, ""):
        return "transactional_message_id is required"
    if identifiers is None:
        return "identifiers is required"
    return None
