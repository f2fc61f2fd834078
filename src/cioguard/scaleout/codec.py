"""Stream layout shared by producers and workers: key names, partitioning, entry encoding.

::

    from cioguard.scaleout.codec import Keys, partition_of, encode, decode

    keys = Keys("cioguard")
    stream = keys.stream(partition_of(op.shard_key, 8))   # b"cioguard:stream:3"
    fields = encode(op)                                  # dict[bytes, bytes] for XADD
    same = decode(fields)                                # an equal Operation

An operation becomes one stream entry holding its body bytes and every endpoint field,
**including the ``Authorization`` header**: whoever can read the Redis instance holds the
Customer.io credentials and the personal data in the bodies. Protect it like the spool file
(private network, ``requirepass``/ACLs, TLS via ``rediss://``).

Partitions use CRC-32 of the shard key (stable across processes and hosts, unlike the salted
built-in ``hash``), so one person's operations always land in the same stream, in order.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from typing import Any, cast

import orjson
from opentelemetry.trace import SpanContext, TraceFlags

from cioguard.operations.construct import make_operation
from cioguard.operations.model import ApiKind, Endpoint, Operation, Route

#: The entry's only field name; bumped when the layout changes. Workers acknowledge and count
#: (as errors) entries of unknown formats rather than block the stream on them.
FORMAT_VERSION = b"o1"
GROUP = b"cioguard"


class Keys:
    """Redis key names under one prefix (several deployments may share an instance)."""

    def __init__(self, prefix: str = "cioguard") -> None:
        self.prefix = prefix

    def stream(self, partition: int) -> bytes:
        return f"{self.prefix}:stream:{partition}".encode()

    def lease(self, partition: int) -> bytes:
        return f"{self.prefix}:lease:{partition}".encode()

    def workers(self) -> bytes:
        return f"{self.prefix}:workers".encode()

    def bucket(self, endpoint_id: str) -> bytes:
        return f"{self.prefix}:rate:{endpoint_id}".encode()

    def pause(self, endpoint_id: str) -> bytes:
        return f"{self.prefix}:pause:{endpoint_id}".encode()


def partition_of(shard_key: str, partitions: int) -> int:
    """Stable partition of ``shard_key`` in ``range(partitions)``."""
    return zlib.crc32(shard_key.encode("utf-8", "surrogatepass")) % partitions


def endpoint_id(endpoint: Endpoint) -> str:
    """A non-secret, stable id of one credential set (a hash; never the key itself)."""
    digest = zlib.crc32(endpoint.auth_header.encode("latin-1", "replace"))
    digest = zlib.crc32(endpoint.base_url.encode(), digest)
    return f"{digest:08x}"


def encode(op: Operation) -> dict[bytes, bytes]:
    """The XADD fields of ``op`` (the span context and caller timing stay in the process).

    One field, ``FORMAT_VERSION`` → a JSON header line (endpoint and operation fields) + ``\n`` +
    the body bytes. The caller span's context travels as a
    ``traceparent`` string, so the worker's send spans link to it. One field instead of thirteen
    keeps the RESP reply small: parsing it is most
    of a worker's CPU time (a JSON header never holds a raw newline, so the split is exact).
    """
    endpoint = op.endpoint
    header = orjson.dumps(
        [
            endpoint.api,
            endpoint.base_url,
            endpoint.auth_header,
            endpoint.label,
            op.method,
            op.route,
            op.http_method,
            op.path,
            op.shard_key,
            op.op_id,
            op.event_id,
            op.created_at,
            _traceparent(op.span_context),
        ]
    )
    return {FORMAT_VERSION: header + b"\n" + op.body}


class EntryError(ValueError):
    """A stream entry that is not a cioguard operation of a known format."""


_endpoints: dict[tuple[str, str, str, str], Endpoint] = {}


def _endpoint(api: str, base_url: str, auth: str, label: str) -> Endpoint:
    """One shared :class:`Endpoint` per credential set (batching compares them by identity first)."""
    key = (api, base_url, auth, label)
    endpoint = _endpoints.get(key)
    if endpoint is None:
        if len(_endpoints) >= 256:  # bounded: a worker serves a handful of workspaces
            _endpoints.clear()
        endpoint = _endpoints[key] = Endpoint(
            api=cast(ApiKind, api), base_url=base_url, auth_header=auth, label=label
        )
    return endpoint


def decode(fields: Mapping[bytes, bytes], now: float | None = None) -> Operation:
    """The operation stored by :func:`encode`; ``enqueued_at`` is re-based to this process's
    monotonic clock from the wall-clock ``created_at`` (so delivery lag spans the queue)."""
    value = fields.get(FORMAT_VERSION)
    if value is None:
        raise EntryError(f"unknown entry format (fields {sorted(fields)[:3]!r})")
    try:
        header, _, body = value.partition(b"\n")
        (api, base, auth, label, method, route, http_method, path, shard, op_id, event, created, parent) = (
            orjson.loads(header)
        )
        mono = time.monotonic() if now is None else now
        created = float(created)
        return make_operation(
            _endpoint(api, base, auth, label),
            method,
            cast(Route, route),
            http_method,
            path,
            body,
            shard,
            op_id,
            event,
            mono - max(0.0, time.time() - created) if created else mono,
            created,
            _span_context(parent),
        )
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise EntryError(f"malformed entry: {type(exc).__name__}") from None


def _traceparent(ctx: Any) -> str | None:
    """The caller span's context as a W3C ``traceparent`` value (the send span links to it)."""
    if ctx is None or not getattr(ctx, "is_valid", False):
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _span_context(value: object) -> SpanContext | None:
    if not isinstance(value, str) or len(value) != 55:
        return None
    try:
        _, trace_id, span_id, flags = value.split("-")
        return SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
    except ValueError:
        return None
