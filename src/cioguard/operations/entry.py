"""The caller's snapshot of an event's data, and the v2 entry the sender joins from it.

::

    snapshot = snapshot_data("track", "42", "purchase", {"plan": "pro"}, None, None, exact=False)
    data_json, value, stamp = snapshot                  # caller: the data's JSON, taken now
    body = entry_json("track", value, "purchase", data_json, stamp, None, ulid)   # sender

:func:`snapshot_data` is all the caller pays for the bytes: one ``orjson.dumps`` of the data (the
caller may change its dict afterwards) and the cheap checks that prove the bytes are what the SDK
would send; ``None`` sends the call to the exact path of :func:`cioguard.operations.build.build`.
:func:`entry_json` joins the entry, byte for byte what ``orjson.dumps`` of build()'s entry dict
gives (tests hold them equal), from cached fragments of the identifier and the event name.
"""

from __future__ import annotations

from typing import Any

from orjson import dumps as _orjson_dumps

from cioguard.operations.calls import backfill_timestamp, event_timestamp
from cioguard.operations.routes import V2_ENTRY_LIMIT
from cioguard.operations.serialize import _OPTIONS, _UUID_TEXT, _default, _is_utf8, plain

__all__ = ["ID_SLOT", "PLACEHOLDER", "entry_json", "snapshot_data"]

#: Where the event id sits in a snapshot's body: ``{"id":"`` is 7 bytes, a ULID 26.
ID_SLOT = slice(7, 33)
#: What stands for the ULID until the sender writes it (``Lanes.resolve``).
PLACEHOLDER = b"0" * 26
_PLACEHOLDER_HEAD = b'{"id":"' + PLACEHOLDER + b'"'
_EVENT = b',"type":"person","action":"event","identifiers":'
_PAGE = b',"type":"person","action":"page","identifiers":'
#: JSON fragments of recent identifiers and event names (bounded; cleared when full).
_PARTS_MAX = 10_000
_IDENTIFIERS: dict[str, bytes] = {}
_NAMED: dict[str, bytes] = {}
#: The most an entry's JSON adds to its data, name, identifier and event id (keys, the timestamp).
_ENVELOPE_MAX = 160


def snapshot_data(
    method: str, customer_id: Any, name: Any, data: dict[str, Any], raw: Any, event_id: Any, exact: bool
) -> tuple[bytes, str, Any] | None:
    """The caller's snapshot of an event: the JSON of its data (the caller may change the dict
    afterwards), the raw identifier (its lane key until ``Lanes.resolve``) and the timestamp as
    sent (None: none), or ``None`` when build()'s exact path must decide. :func:`entry_json`
    makes the v2 entry from them (on the sender)."""
    if type(name) is not str or (event_id is not None and type(event_id) is not str):
        return None
    value = customer_id if type(customer_id) is str else str(customer_id)
    if not (name.isascii() and value.isascii() and (event_id is None or event_id.isascii())) and not (
        _is_utf8(name) and _is_utf8(value) and (event_id is None or _is_utf8(event_id))
    ):
        return None  # a lone surrogate: build() names the field (the sender could not encode it)
    stamp = None
    if raw is not None:
        stamp = backfill_timestamp(raw) if method == "backfill" else event_timestamp(raw)
    try:
        data_json = _orjson_dumps(data, _default, _OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included: build() names the place
        return None
    # A "null" may hide an inf, a UUID-shaped string a UUID object: the type walk decides (here
    # when exact, else in the sender's rules: cioguard.pitfalls.values).
    if (
        exact
        and (
            data_json.find(b"null") >= 0
            or (data_json.count(b"-") >= 4 and _UUID_TEXT.search(data_json) is not None)
        )
        and not plain(data)
    ):
        return None
    # Invariant: the entry is at most this long (a JSON string is at most 6 bytes a character),
    # so an entry that might pass the v2 limit is measured exactly by build().
    bound = len(data_json) + 6 * (len(name) + len(value) + (len(event_id) if event_id else 0))
    if bound > V2_ENTRY_LIMIT - _ENVELOPE_MAX:
        return None
    return data_json, value, stamp


def entry_json(
    method: str, value: str, name: str, data_json: bytes, stamp: Any, event_id: Any, ulid: str | None = None
) -> bytes:
    """The v2 entry of a snapshotted event, byte for byte what ``orjson.dumps`` of build()'s entry
    dict gives (tests hold them equal). Its ``id`` is ``event_id``, else ``ulid``, else the
    placeholder (``Lanes.resolve`` writes the ULID there)."""
    identifiers = _IDENTIFIERS.get(value)
    if identifiers is None:
        identifiers = _identifiers(value)
    named = _NAMED.get(name)
    if named is None:
        named = _named(name)
    return b"".join(
        (
            (_PLACEHOLDER_HEAD if ulid is None else b'{"id":"' + ulid.encode() + b'"')
            if event_id is None
            else b'{"id":' + _orjson_dumps(event_id),
            _PAGE if method == "pageview" else _EVENT,
            identifiers,
            named,
            data_json,
            b"}" if stamp is None else b',"timestamp":' + _orjson_dumps(stamp) + b"}",
        )
    )


def _identifiers(value: str) -> bytes:
    """``{"<kind>":<value>`` of a raw identifier (mapping.person_identifier; tests hold them equal)."""
    if value.startswith("cio_"):
        part = b'{"cio_id":' + _orjson_dumps(value[4:])
    elif "@" in value:
        part = b'{"email":' + _orjson_dumps(value)
    else:
        part = b'{"id":' + _orjson_dumps(value)
    if len(_IDENTIFIERS) >= _PARTS_MAX:
        _IDENTIFIERS.clear()
    _IDENTIFIERS[value] = part
    return part


def _named(name: str) -> bytes:
    """``},"name":<name>,"attributes":`` (event names are few: a dynamic name is a pitfall)."""
    part = b'},"name":' + _orjson_dumps(name) + b',"attributes":'
    if len(_NAMED) >= _PARTS_MAX:
        _NAMED.clear()
    _NAMED[name] = part
    return part
