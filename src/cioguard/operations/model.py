"""The data that flows from a patched SDK call to the background sender.

A user's SDK call is parsed into a :class:`Call` (the arguments, bound exactly as the SDK binds them),
checked by the pitfall rules, then turned into an :class:`Operation`: the request it stands for,
serialised once on the caller's thread. After construction nothing mutates an ``Operation``; the
sender may hold it across retries, processes (the spool) and threads.

Nothing here imports the SDK, wrapt, the delivery engine or the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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


class Operation:
    """One accepted unit of work, ready to send; immutable after construction.

    - ``route == "v2"``: ``body`` is one JSON-encoded ``/api/v2/batch`` entry; the sender joins
      entries into ``{"batch":[...]}``. ``http_method``/``path`` are ``POST``/``/api/v2/batch``.
    - ``route == "single"``: ``body`` is the complete JSON request body for ``http_method`` +
      ``path`` (``/api/v1/...`` or ``/v1/send/...``), sent on its own.

    ``shard_key`` identifies the person (or object) the operation is about; operations with the
    same key are delivered in the order they were accepted. ``event_id`` is the ULID sent as the
    event ``id`` (dedupe at Customer.io), ``None`` for non-event operations. ``op_id`` is a ULID
    unique to this operation (equal to ``event_id`` when there is one), used by the spool.
    """

    __slots__ = (
        "body",
        "caller_seconds",
        "created_at",
        "endpoint",
        "enqueued_at",
        "event_id",
        "http_method",
        "method",
        "op_id",
        "path",
        "route",
        "shard_key",
        "size",
        "span_context",
    )

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
        self.route = route
        self.http_method = http_method
        self.path = path
        self.body = body
        self.size = len(body)
        self.shard_key = shard_key
        self.op_id = op_id
        self.event_id = event_id
        #: ``time.monotonic()`` at acceptance (delivery lag, flush ordering).
        self.enqueued_at = enqueued_at
        #: ``time.time()`` at acceptance (survives the spool across processes).
        self.created_at = created_at
        #: The caller span's ``SpanContext`` (for links from the send span), or ``None``.
        self.span_context = span_context
        #: Time the caller spent inside the patched SDK method (recorded by the sender, off the
        #: hot path).
        self.caller_seconds = caller_seconds

    def __repr__(self) -> str:
        return (
            f"Operation(method={self.method!r}, route={self.route!r}, {self.http_method} "
            f"{self.endpoint.label}, size={self.size}, op_id={self.op_id!r})"
        )
