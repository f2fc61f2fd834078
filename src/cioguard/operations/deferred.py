"""The caller's share of an event, and the :class:`Lanes` that complete operations on the sender.

::

    lanes = Lanes()                                   # one per instrumentation
    op = snapshot_event(call, endpoint, None, time.time(), time.monotonic(), lanes)
    # caller thread: op is queued as it is (JSON bytes of the entry, with room for the id)
    op.shard_key, op.body                             # sender thread: lane and ULID filled in

:func:`snapshot_event` is the fast path of ``track``/``pageview``/``backfill``. The caller's share
is :func:`~cioguard.operations.entry.snapshot_data`: one ``orjson.dumps`` of the event's data (so
the caller may change its dict afterwards) plus the cheap checks that prove the bytes are what the
SDK would send. The instrumentation queues that as a :data:`Snapshot` tuple; the sender's intake
(:func:`take_in`) joins it into the v2 entry (:func:`~cioguard.operations.entry.entry_json`). An
entry made before the sender's turn has 26 zero characters where the event ``id`` goes — the entry
starts ``{"id":"``, so the id is always ``body[7:33]``. ``None`` means the exact path of
:func:`cioguard.operations.build.build` must decide (data that is not plain, an entry that may pass
the v2 limit, a name or caller ``id`` that is not a string): it raises the documented errors at the
caller's line or picks the v1 route.

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

from cioguard.operations.entry import ID_SLOT, PLACEHOLDER, entry_json, snapshot_data
from cioguard.operations.model import IN_BODY, LATER, V2_REQUEST, Call, Endpoint, Operation
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
                op._body = op._body.replace(PLACEHOLDER, ulid.encode(), 1)
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
        name = "email:" + email.lower()
        # Identified again: to the young end, so the bound forgets whoever was identified longest ago.
        if emails.pop(name, None) is None and len(emails) >= _EMAILS_MAX:
            # Oldest first (dicts keep insertion order).
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                emails.pop(next(iter(emails)))
        emails[name] = key


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
