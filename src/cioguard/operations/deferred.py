"""The caller's share of an event, and the :class:`Lanes` that complete operations on the sender.

::

    lanes = Lanes()                                   # one per instrumentation
    op = snapshot_event(call, endpoint, None, time.time(), time.monotonic(), lanes)
    # caller thread: op is queued as it is (JSON bytes of the entry, with room for the id)
    op.shard_key, op.body                             # sender thread: lane and ULID filled in

:func:`snapshot_event` is the fast path of ``track``/``pageview``/``backfill``. The caller's share
is :func:`snapshot_data`: one ``orjson.dumps`` of the event's data (so the caller may change its
dict afterwards) plus the cheap checks that prove the bytes are what the SDK would send; the
instrumentation queues that as a :data:`Snapshot` tuple, and the sender's :func:`materialize` joins
it into the v2 entry (:func:`entry_json`), with 26 zero characters where the event ``id`` goes —
the entry starts ``{"id":"``, so the id is always ``body[7:33]``. Both return ``None`` whenever
the exact path of :func:`cioguard.operations.build.build` must decide (data that is not plain, an
entry that may pass the v2 limit, a name or caller ``id`` that is not a string): that path raises
the documented errors at the caller's line or picks the v1 route.

:class:`Lanes` is the sender's side (:class:`~cioguard.operations.model.Resolver`): it turns the
raw identifier into the ``shard_key`` (shared between operations of one person), routes an
operation addressed by email into the lane of the id that ``identify`` tied it to, and writes a
new ULID (from the acceptance time) into the body. It runs at the first read of an operation's
lane or body, under the model's lock, in the order the sender takes operations off the queue, so
an ``identify`` is always learnt before the operations accepted after it. The sender's intake
makes a queued :data:`Snapshot` complete in one step (:func:`take_in`, the same lane and bytes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from orjson import dumps as _orjson_dumps

from cioguard.operations.calls import backfill_timestamp, event_timestamp
from cioguard.operations.model import IN_BODY, LATER, V2_REQUEST, Call, Endpoint, Operation
from cioguard.operations.routes import V2_ENTRY_LIMIT
from cioguard.operations.serialize import _OPTIONS, _UUID_TEXT, _default, plain
from cioguard.operations.ulid import new_ulid

__all__ = [
    "ID_SLOT",
    "Lanes",
    "Snapshot",
    "entry_json",
    "materialize",
    "snapshot_data",
    "snapshot_event",
    "snapshot_fields",
    "take_in",
]

#: Where the event id sits in a snapshot's body: ``{"id":"`` is 7 bytes, a ULID 26.
ID_SLOT = slice(7, 33)
_PLACEHOLDER = "0" * 26
_PLACEHOLDER_BYTES = _PLACEHOLDER.encode()
_PLACEHOLDER_HEAD = b'{"id":"' + _PLACEHOLDER_BYTES + b'"'
_EVENT = b',"type":"person","action":"event","identifiers":'
_PAGE = b',"type":"person","action":"page","identifiers":'
#: JSON fragments of recent identifiers and event names (bounded; cleared when full).
_PARTS_MAX = 10_000
_IDENTIFIERS: dict[str, bytes] = {}
_NAMED: dict[str, bytes] = {}
#: The most an entry's JSON adds to its data, name, identifier and event id (keys, the timestamp).
_ENVELOPE_MAX = 160
#: People whose email → id mapping is remembered (about 15 MB at the bound), shard keys shared.
_EMAILS_MAX = 100_000
_KEYS_MAX = 100_000
_new_operation = Operation.__new__


def snapshot_event(
    call: Call,
    endpoint: Endpoint,
    span_context: Any,
    now: float,
    mono: float | None,
    lanes: Lanes,
    exact: bool = True,
) -> Operation | None:
    """The deferred operation for an event call, or ``None`` when build()'s exact path must run.

    ``exact=False`` (the rules run on the sender): a ``null`` or a UUID-shaped string in the JSON
    does not send the caller through the type walk; the sender's rules look behind them instead
    (an ``inf``, which orjson writes as ``null``, or a ``UUID`` object is then reported at the call
    site as CIO014 rather than raised: :mod:`cioguard.pitfalls.values`).
    """
    return snapshot_fields(
        call.method,
        call.customer_id,
        call.name,
        call.data,
        call.timestamp,
        call.event_id,
        endpoint,
        span_context,
        now,
        mono,
        lanes,
        exact,
    )


def snapshot_fields(
    method: str,
    customer_id: Any,
    name: Any,
    data: dict[str, Any],
    raw: Any,
    event_id: Any,
    endpoint: Endpoint,
    span_context: Any,
    now: float,
    mono: float | None,
    lanes: Lanes,
    exact: bool,
) -> Operation | None:
    """:func:`snapshot_event` from the call's fields (``raw`` is the timestamp as passed)."""
    snapshot = snapshot_data(method, customer_id, name, data, raw, event_id, exact)
    if snapshot is None:
        return None
    data_json, value, stamp = snapshot
    body = entry_json(method, value, name, data_json, stamp, event_id)
    return _operation(endpoint, method, body, value, event_id, now, mono, span_context, 0, lanes)


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


#: What the caller's fast path queues instead of an :class:`Operation` (one tuple, made at C
#: speed): ``(endpoint, method, data JSON, raw identifier, event id or None, created_at, span
#: capture, caller µs, lanes, name, timestamp or None)``. The sender makes it an operation at
#: intake (:func:`materialize`).
Snapshot = tuple[Endpoint, str, bytes, str, Any, float, Any, int, "Lanes", str, Any]


def materialize(item: Snapshot) -> Operation:
    """The :class:`Operation` of a queued :data:`Snapshot` (a slow path; the sender's intake
    uses :func:`take_in`)."""
    endpoint, method, data_json, value, event_id, now, span_context, caller_us, lanes, name, stamp = item
    body = entry_json(method, value, name, data_json, stamp, event_id)
    return _operation(endpoint, method, body, value, event_id, now, None, span_context, caller_us, lanes)


def take_in(item: Snapshot) -> Operation:
    """:func:`materialize` and ``Lanes.resolve`` in one step, for the sender's intake: the entry
    is joined with its ULID in place (no placeholder to replace), the operation comes out complete."""
    endpoint, method, data_json, value, event_id, now, span_context, caller_us, lanes, name, stamp = item
    # No model lock: nobody else can see this operation yet; the backlog has its own lock, and
    # Lanes' dicts and the ULID factory are safe for concurrent use.
    before = lanes.before
    if before is not None:
        before()  # the checks queued before this call run first (as in Lanes.resolve)
    key = lanes.lane(value)
    ulid = new_ulid(now)
    body = entry_json(method, value, name, data_json, stamp, event_id, ulid)
    op = _operation(endpoint, method, body, key, event_id, now, None, span_context, caller_us, None)
    op._op_id = IN_BODY if event_id is None else ulid
    return op


def _operation(
    endpoint: Endpoint,
    method: str,
    body: bytes,
    value: str,
    event_id: Any,
    now: float,
    mono: float | None,
    span_context: Any,
    caller_us: int,
    lanes: Lanes | None,
) -> Operation:
    op = _new_operation(Operation)
    op.endpoint = endpoint
    op.method = method
    op._request = V2_REQUEST
    op._body = body
    op._shard_key = value  # the raw identifier until Lanes.resolve
    op._op_id = None
    op._event_id = IN_BODY if event_id is None else event_id
    op._enqueued_at = mono  # None: derived from created_at when read (no float kept per event)
    op.created_at = now
    op.span_context = span_context
    op._caller_us = caller_us
    op._pending = lanes
    return op


class Lanes:
    """Completes deferred operations on the sender: lanes by person, email → id, event ULIDs."""

    def __init__(self) -> None:
        #: ``"email:<lower-cased email>" → "id:<id>"`` learnt from identify calls.
        self.emails: dict[str, str] = {}
        #: Raw identifier -> its shard key, so one person's operations share one string (bounded;
        #: cleared when full).
        self._keys: dict[str, str] = {}
        #: Run before each resolution: the pitfall checks the caller's fast path queued (set by
        #: the instrumentation; they run in call order, before the operations they precede).
        self.before: Callable[[], None] | None = None

    def resolve(self, op: Operation) -> None:
        """Fill ``op``'s lane and id (the model's lock is held: one thread at a time)."""
        before = self.before
        if before is not None:
            before()
        if op._op_id is None:  # a snapshot: the raw identifier, no ULID yet
            op._shard_key = self.lane(op._shard_key)
            ulid = new_ulid(op.created_at)
            if op._event_id is IN_BODY:
                # The placeholder's first occurrence is the id at body[7:33] (nothing comes before it).
                op._body = op._body.replace(_PLACEHOLDER_BYTES, ulid.encode(), 1)
                op._op_id = IN_BODY
            else:
                op._op_id = ulid
            return
        if op._op_id is LATER:  # a person call's v2 entry: its op id is made here, not on the caller
            op._op_id = new_ulid(op.created_at)
        key = op._shard_key
        if self.emails and key.startswith("email:"):
            op._shard_key = self.emails.get(key.lower(), key)

    def lane(self, value: str) -> str:
        """The shard key of a raw identifier (shared between one person's operations), moved to
        the id's lane when ``identify`` tied its email to one (the model's lock is held)."""
        keys = self._keys
        key = keys.get(value)  # the raw identifier -> its shared "<type>:<value>" key
        if key is None:
            if len(keys) >= _KEYS_MAX:
                keys.clear()
            if value.startswith("cio_"):
                key = "cio_id:" + value[4:]
            elif "@" in value:
                key = "email:" + value
            else:
                key = "id:" + value
            keys[value] = key
        if self.emails and key.startswith("email:"):
            return self.emails.get(key.lower(), key)
        return key

    def learn(self, email: str, key: str) -> None:
        """Tie ``email`` to the lane ``key`` (``"id:<id>"``) from ``identify(id, email=…)``."""
        emails = self.emails
        if len(emails) >= _EMAILS_MAX:
            # Oldest first (dicts keep insertion order).
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                emails.pop(next(iter(emails)))
        emails["email:" + email.lower()] = key


class Identify:
    """The resolver of an ``identify`` operation that carries an email: learns, then resolves."""

    __slots__ = ("email", "lanes")

    def __init__(self, lanes: Lanes, email: str) -> None:
        self.lanes = lanes
        self.email = email

    def resolve(self, op: Operation) -> None:
        self.lanes.resolve(op)
        key = op._shard_key
        if key.startswith("id:"):
            self.lanes.learn(self.email, key)
