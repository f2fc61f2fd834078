"""The data that flows from a patched SDK call to the background sender.

A user's SDK call is parsed into a :class:`Call` (the arguments, bound exactly as the SDK binds them),
checked by the pitfall rules, then turned into an :class:`Operation`: the request it stands for,
serialised once on the caller's thread. What may wait (the lane, the ULID) is completed on the
sender's thread the first time it is read; after that nothing changes in an ``Operation``, and the
sender may hold it across retries, processes (the spool) and threads.

Nothing here imports the SDK, wrapt, the delivery engine or the web layer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cioguard import forks

#: Which Customer.io API an endpoint belongs to.
ApiKind = Literal["track", "app"]

#: How an operation reaches Customer.io: as one entry of a ``/api/v2/batch`` request, or as a
#: request of its own (v1 Track paths, v2 entries over 32 KB, App API sends).
Route = Literal["v2", "single"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom operations are sent: one Customer.io workspace credential set.

    Operations are batched per endpoint. ``auth_header`` is the full ``Authorization`` header
    value (``Basic …`` for Track, ``Bearer …`` for the App API); it never appears in ``repr``.
    ``base_url`` is scheme + host [+ port], without a path: ``https://track.customer.io``.
    """

    api: ApiKind
    base_url: str
    auth_header: str = field(repr=False)
    #: A short, non-secret label for logs and metrics (e.g. ``track-us``), never a key or site id.
    label: str = "track"


class Call:
    """One SDK call's arguments, bound as the SDK binds them (before any serialisation).

    ``method`` is the SDK method name (``track``, ``identify``, ``send_email`` …). ``customer_id``
    is the identifier in the URL path (``id`` for ``identify``), ``name`` the event or page name,
    ``data`` the event data, identify attributes, device data or App API request dict, and
    ``extra`` holds method-specific arguments (``device_id``, ``platform``, merge ids and types,
    ``anonymous_id``, the ``operations`` list of ``batch``).
    """

    __slots__ = ("customer_id", "data", "event_id", "extra", "method", "name", "timestamp")

    def __init__(
        self,
        method: str,
        customer_id: Any = None,
        name: Any = None,
        data: Any = None,
        timestamp: Any = None,
        event_id: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.customer_id = customer_id
        self.name = name
        self.data = data
        self.timestamp = timestamp
        self.event_id = event_id
        self.extra = extra

    def __repr__(self) -> str:
        # Ids and data are personal data: never in repr.
        return f"Call(method={self.method!r})"


class Resolver(Protocol):
    """Completes a deferred :class:`Operation` on the sender (see :mod:`cioguard.operations.deferred`).

    ``resolve(op)`` sets ``op._shard_key`` (and, for an event whose id cioguard makes, writes the
    ULID into ``op._body[7:33]`` and sets ``op._op_id``/``op._event_id`` to :data:`IN_BODY`).
    """

    def resolve(self, op: Operation) -> None: ...


#: ``(route, http_method, path)`` of every v2 batch entry: one shared tuple, not three slots each.
V2_REQUEST: tuple[Route, str, str] = ("v2", "POST", "/api/v2/batch")
#: Marks ``op_id``/``event_id`` as "the ULID at ``body[7:33]``" (no second copy of the id kept).
IN_BODY: Any = type("InBody", (), {"__repr__": lambda self: "IN_BODY", "__slots__": ()})()
#: Marks ``op_id`` as "made by the resolver on the sender" (never seen by a reader: reading
#: ``op_id`` runs the resolver first).
LATER: Any = type("Later", (), {"__repr__": lambda self: "LATER", "__slots__": ()})()
#: Serialises the completion of deferred operations (sender threads only; uncontended).
_lock = threading.Lock()


def _new_lock_in_child() -> None:
    # A sender thread of the parent may hold the lock at fork time: the child gets a fresh one.
    global _lock
    _lock = threading.Lock()


forks.in_child(_new_lock_in_child)


class Operation:
    """One accepted unit of work; its observable fields never change once read.

    - ``route == "v2"``: ``body`` is one JSON-encoded ``/api/v2/batch`` entry; the sender joins
      entries into ``{"batch":[...]}``. ``http_method``/``path`` are ``POST``/``/api/v2/batch``.
    - ``route == "single"``: ``body`` is the complete JSON request body for ``http_method`` +
      ``path`` (``/api/v1/...`` or ``/v1/send/...``), sent on its own.

    ``shard_key`` identifies the person (or object) the operation is about; operations with the
    same key are delivered in the order they were accepted. ``event_id`` is the ULID sent as the
    event ``id`` (dedupe at Customer.io), ``None`` for non-event operations. ``op_id`` is a ULID
    unique to this operation (equal to ``event_id`` when there is one), used by the spool.

    **Deferred parts.** On the caller's thread an operation is only a snapshot of the call: the
    entry's JSON bytes (with room for the event id) and the raw identifier. The rest is done on
    the sender's thread by the operation's :class:`Resolver`, at the first read of ``shard_key``,
    ``body``, ``op_id`` or ``event_id``: the email → id lane (learnt in acceptance order: the
    sender reads operations in queue order) and the ULID written into the body. ``size``,
    ``route``, ``method``, ``endpoint`` and the times never wait: they are final at acceptance.
    Invariant: the resolver runs once, under a lock, and every reader sees its one result.
    """

    __slots__ = (
        "_body",
        "_caller_us",
        "_enqueued_at",
        "_event_id",
        "_op_id",
        "_pending",
        "_request",
        "_shard_key",
        "created_at",
        "endpoint",
        "method",
        "span_context",
    )

    _body: bytes
    _caller_us: int
    _enqueued_at: float | None
    _event_id: Any
    _op_id: Any
    _pending: Resolver | None
    _request: tuple[Route, str, str]
    _shard_key: str

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        method: str,
        route: Route,
        http_method: str,
        path: str,
        body: bytes,
        shard_key: str,
        op_id: str,
        event_id: str | None = None,
        enqueued_at: float = 0.0,
        created_at: float = 0.0,
        span_context: Any = None,
        caller_seconds: float = 0.0,
    ) -> None:
        self.endpoint = endpoint
        self.method = method
        self._request = V2_REQUEST if (route, http_method, path) == V2_REQUEST else (route, http_method, path)
        self._body = body
        self._shard_key = shard_key
        self._op_id = op_id
        self._event_id = event_id
        self._enqueued_at = enqueued_at
        #: ``time.time()`` at acceptance (survives the spool across processes).
        self.created_at = created_at
        #: The caller span's ``SpanContext`` (for links from the send span), or ``None``.
        self.span_context = span_context
        self._pending = None
        self.caller_seconds = caller_seconds

    # -- the request ------------------------------------------------------------------------------

    @property
    def route(self) -> Route:
        return self._request[0]

    @property
    def http_method(self) -> str:
        return self._request[1]

    @property
    def path(self) -> str:
        return self._request[2]

    @property
    def size(self) -> int:
        """``len(body)``, known at acceptance (reading it completes nothing)."""
        return len(self._body)

    @property
    def enqueued_at(self) -> float:
        """``time.monotonic()`` at acceptance (delivery lag, patience).

        A snapshot stores none (one float less per queued event): it is then derived from
        ``created_at`` (``time.time()`` at acceptance) and the clocks now. The delivery engine's
        sender sets it when it takes the operation in: the acceptance time on the engine's clock
        (``time.monotonic()`` unless a test injects one), one float shared by a whole intake
        unless the operation waited (then derived from ``created_at``), so the engine keeps no
        other object per queued operation.
        """
        mono = self._enqueued_at
        if mono is None:
            return time.monotonic() - max(0.0, time.time() - self.created_at)
        return mono

    @enqueued_at.setter
    def enqueued_at(self, mono: float) -> None:
        self._enqueued_at = mono

    @property
    def caller_seconds(self) -> float:
        """Time the caller spent inside the patched SDK method (recorded by the sender)."""
        return self._caller_us / 1_000_000

    @caller_seconds.setter
    def caller_seconds(self, seconds: float) -> None:
        # Whole microseconds: below 257 µs CPython shares the int, so a queued call keeps no float.
        self._caller_us = int(seconds * 1_000_000)

    # -- deferred parts (sender side) ---------------------------------------------------------------

    def _complete(self) -> None:
        with _lock:
            pending = self._pending
            if pending is not None:
                pending.resolve(self)
                self._pending = None

    @property
    def shard_key(self) -> str:
        if self._pending is not None:
            self._complete()
        return self._shard_key

    @shard_key.setter
    def shard_key(self, key: str) -> None:
        self._shard_key = key

    @property
    def body(self) -> bytes:
        if self._pending is not None:
            self._complete()
        return self._body

    @property
    def op_id(self) -> str:
        if self._pending is not None:
            self._complete()
        op_id = self._op_id
        return self._body[7:33].decode() if op_id is IN_BODY else op_id

    @property
    def event_id(self) -> str | None:
        if self._pending is not None:
            self._complete()
        event_id = self._event_id
        return self._body[7:33].decode() if event_id is IN_BODY else event_id

    def __repr__(self) -> str:
        return (
            f"Operation(method={self.method!r}, route={self.route!r}, {self.http_method} "
            f"{self.endpoint.label}, size={self.size})"
        )
