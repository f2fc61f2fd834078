"""Turn a bound :class:`~cioguard.operations.model.Call` into ready-to-send :class:`Operation` objects.

>>> from cioguard.operations.calls import bind
>>> endpoint = track_endpoint("site", "key", "https://track.customer.io")
>>> [op] = build(bind("track", ("42", "purchase"), {"data": {"plan": "pro"}}), endpoint, now=1.7e9)
>>> op.route, op.path, op.shard_key, op.event_id == op.op_id
('v2', '/api/v2/batch', 'id:42', True)

Everything is serialised here, once, on the caller's thread (so the caller's objects may change
afterwards). Routes:

- Track calls become one ``/api/v2/batch`` entry each (the mapping is in
  :mod:`cioguard.operations.mapping`); ``batch(operations)`` becomes one operation per entry, event
  entries without an ``id`` getting a ULID.
- ``route="single"`` (a request of its own): ``track_anonymous`` (v2 has no anonymous person event:
  POST ``/api/v1/events``), calls with no exact v2 form, any entry over 32 000 bytes (the v2 per-entry
  limit: sent as the SDK's v1 request instead) and App API sends (POST ``/v1/send/<kind>``).
- Too large even for v1 (event data over 100 000 bytes, a request over 500 000 bytes, a user batch
  entry over 32 000 bytes): :class:`~cioguard.operations.errors.OperationTooLarge`.

Every event carries an ``id`` (the caller's, or a new ULID) so Customer.io drops retried
duplicates. ``op_id`` is that ULID when cioguard made it, else a new one (a caller may reuse an
``id`` on purpose; ``op_id`` must stay unique). ``shard_key`` is ``"<identifier type>:<value>"``
(``"id:42"``, ``"email:a@b.c"``): one person's operations keep their order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orjson import dumps as _orjson_dumps

from cioguard.operations import mapping
from cioguard.operations.calls import backfill_timestamp, event_timestamp
from cioguard.operations.checks import CHECKS as _CHECKS
from cioguard.operations.construct import make_operation
from cioguard.operations.deferred import Identify, Lanes, snapshot_event
from cioguard.operations.endpoints import app_endpoint, origin, track_endpoint
from cioguard.operations.errors import OperationTooLarge
from cioguard.operations.model import LATER, Call, Endpoint, Operation, Resolver
from cioguard.operations.routes import (
    _V2_PATH,
    EVENT_DATA_LIMIT,
    REQUEST_LIMIT,
    V2_ENTRY_LIMIT,
    Builder,
    operation,
    single,
)
from cioguard.operations.serialize import _OPTIONS, _UUID_TEXT, _default, check_parts, dumps, dumps_parts
from cioguard.operations.ulid import new_ulid

__all__ = [
    "EVENT_DATA_LIMIT",
    "REQUEST_LIMIT",
    "V2_ENTRY_LIMIT",
    "app_endpoint",
    "build",
    "origin",
    "track_endpoint",
]

_EVENT_ACTIONS = frozenset({"event", "page", "screen"})
_SNAPSHOT_EVENTS = frozenset({"track", "pageview", "backfill"})
_APP_SENDS = ("send_email", "send_push", "send_sms", "send_whatsapp", "send_inbox_message", "send_in_app")


def build(
    call: Call,
    endpoint: Endpoint,
    *,
    span_context: Any = None,
    now: float | None = None,
    mono: float | None = None,
    lanes: Lanes | None = None,
    exact: bool = True,
) -> list[Operation]:
    """The operations for ``call`` (usually one; one per entry for ``batch``).

    ``now``/``mono`` are ``time.time()``/``time.monotonic()`` at acceptance (read here when not
    given). Raises :class:`~cioguard.operations.errors.SerializationError` for data that cannot be
    sent and :class:`~cioguard.operations.errors.OperationTooLarge` for data over the limits.

    With ``lanes`` (the instrumentation's hot path) an event is only snapshotted here and every
    operation is completed on the sender by ``lanes`` (:mod:`cioguard.operations.deferred`): its
    email → id lane, and its ULID (the event id, or the op id of a person call's v2 entry).
    ``exact=False`` when the pitfall rules run on the sender: an event whose JSON holds ``null``
    skips the caller's type walk, and the rules check its data there (see
    :func:`~cioguard.operations.deferred.snapshot_event`).
    """
    if now is None:
        now = time.time()
    method = call.method
    check = _CHECKS.get(method)
    if check is not None:
        check(call)
    if lanes is not None and method in _SNAPSHOT_EVENTS:
        op = snapshot_event(call, endpoint, span_context, now, mono, lanes, exact)
        if op is not None:
            return [op]
    if mono is None:
        mono = time.monotonic()
    operations = _BUILDERS[method](call, endpoint, span_context, now, mono)
    if lanes is None:
        for op in operations:
            if op._op_id is LATER:  # no sender to complete it: the id is made here
                op._op_id = new_ulid(now)
        return operations
    resolver: Resolver = lanes
    if method == "identify":
        email = call.data.get("email") if isinstance(call.data, dict) else None
        if isinstance(email, str):
            resolver = Identify(lanes, email)
    for op in operations:
        op._pending = resolver
    return operations


def _event(call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float) -> list[Operation]:
    """``track``, ``pageview``, ``backfill``: the hot path (one dict, one ``orjson.dumps``, no helpers)."""
    # Inlined mapping.person_identifier (a call costs ~0.1 µs here); tests hold the two equal.
    customer_id = call.customer_id
    value = customer_id if type(customer_id) is str else str(customer_id)
    if value.startswith("cio_"):
        kind, value = "cio_id", value[4:]
    elif "@" in value:
        kind = "email"
    else:
        kind = "id"
    event_id = call.event_id
    op_id = None
    if event_id is None:
        event_id = op_id = new_ulid(now)
    method = call.method
    # "id" first, as in deferred.snapshot_event: the two paths give the same bytes.
    entry: dict[str, Any] = {
        "id": event_id,
        "type": "person",
        "action": "page" if method == "pageview" else "event",
        "identifiers": {kind: value},
        "name": call.name,
        "attributes": call.data,
    }
    raw = call.timestamp
    if raw is not None:
        stamp = backfill_timestamp(raw) if method == "backfill" else event_timestamp(raw)
        if stamp is not None:
            entry["timestamp"] = stamp
    # dumps_parts(entry, EVENT_LABELS), inlined: see serialize.dumps for the checks' reasons.
    try:
        body = _orjson_dumps(entry, _default, _OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included: dumps_parts names the place
        body = b""
    if not body:
        body = dumps_parts(entry, mapping.EVENT_LABELS)
    if body.find(b"null") >= 0 or (body.count(b"-") >= 4 and _UUID_TEXT.search(body) is not None):
        check_parts(entry, mapping.EVENT_LABELS)
    shard_key = kind + ":" + value
    if len(body) > V2_ENTRY_LIMIT:
        request = mapping.v1_event(call, event_id)
        return single(call, endpoint, span_context, now, mono, shard_key, request, event_id, op_id)
    if op_id is None:
        op_id = new_ulid(now)
    return [
        make_operation(
            endpoint,
            method,
            "v2",
            "POST",
            _V2_PATH,
            body,
            shard_key,
            op_id,
            event_id,
            mono,
            now,
            span_context,
        )
    ]


def _track_anonymous(
    call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float
) -> list[Operation]:
    event_id = call.event_id
    op_id = None
    if event_id is None:
        event_id = op_id = new_ulid(now)
    anonymous_id = (call.extra or {}).get("anonymous_id")
    blank = anonymous_id is None or anonymous_id == ""
    shard_key = "" if blank else "anonymous_id:" + str(anonymous_id)
    request = mapping.v1_event(call, event_id)
    return single(call, endpoint, span_context, now, mono, shard_key, request, event_id, op_id)


def _person(entry_for: Callable[[Call, str, str], dict[str, Any] | None], labels: dict[str, str]) -> Builder:
    """A builder for a non-event person call: its v2 entry, or its v1 request when it has none."""

    def build_person(
        call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float
    ) -> list[Operation]:
        kind, value = mapping.person_identifier(call.customer_id)
        shard_key = kind + ":" + value
        entry = entry_for(call, kind, value)
        if entry is not None:
            body = dumps_parts(entry, labels)
            if len(body) <= V2_ENTRY_LIMIT:
                # The op id (a ULID) is made on the sender, by the resolver (see build()).
                return [operation(call, endpoint, span_context, now, mono, body, shard_key, op_id=LATER)]
        return single(call, endpoint, span_context, now, mono, shard_key, mapping.v1_request(call))

    return build_person


def _merge(call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float) -> list[Operation]:
    entry = mapping.merge_entry(call)
    shard_key = mapping.entry_shard_key(entry)
    body = dumps_parts(entry, mapping.NO_LABELS)
    if len(body) <= V2_ENTRY_LIMIT:
        return [operation(call, endpoint, span_context, now, mono, body, shard_key)]
    return single(call, endpoint, span_context, now, mono, shard_key, mapping.v1_request(call))


def _batch(call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float) -> list[Operation]:
    extra: dict[str, Any] = call.extra or {}
    operations: list[Operation] = []
    for index, entry in enumerate(extra["operations"]):
        is_event = entry.get("type") == "person" and entry.get("action") in _EVENT_ACTIONS
        event_id = entry.get("id") if is_event else None
        op_id = None
        if is_event and event_id is None:
            event_id = op_id = new_ulid(now)
            entry = {**entry, "id": event_id}  # a copy: never touch the caller's dict
        label = f"operations[{index}]"
        body = dumps(entry, label)
        if len(body) > V2_ENTRY_LIMIT:
            raise OperationTooLarge("batch", label, len(body), V2_ENTRY_LIMIT)
        operations.append(
            operation(
                call,
                endpoint,
                span_context,
                now,
                mono,
                body,
                mapping.entry_shard_key(entry),
                event_id=event_id,
                op_id=op_id,
            )
        )
    return operations


def _app_send(call: Call, endpoint: Endpoint, span_context: Any, now: float, mono: float) -> list[Operation]:
    request: dict[str, Any] = call.data
    body = dumps(request, "request")
    identifiers = request.get("identifiers")
    shard_key = ""
    if isinstance(identifiers, dict) and len(identifiers) == 1:
        ((kind, value),) = identifiers.items()
        shard_key = f"{kind}:{value}"
    op = operation(
        call,
        endpoint,
        span_context,
        now,
        mono,
        body,
        shard_key,
        route="single",
        path="/v1/send/" + call.method[5:],
    )
    return [op]


_BUILDERS: dict[str, Builder] = {
    "track": _event,
    "pageview": _event,
    "backfill": _event,
    "track_anonymous": _track_anonymous,
    "identify": _person(mapping.identify_entry, mapping.IDENTIFY_LABELS),
    "delete": _person(mapping.simple_entry, mapping.NO_LABELS),
    "suppress": _person(mapping.simple_entry, mapping.NO_LABELS),
    "unsuppress": _person(mapping.simple_entry, mapping.NO_LABELS),
    "add_device": _person(mapping.add_device_entry, mapping.DEVICE_LABELS),
    "delete_device": _person(mapping.delete_device_entry, mapping.NO_LABELS),
    "merge_customers": _merge,
    "batch": _batch,
    **dict.fromkeys(_APP_SENDS, _app_send),
}
