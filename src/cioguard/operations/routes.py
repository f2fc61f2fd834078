"""The two routes an operation takes, and Customer.io's size limits (used by :mod:`.build`).

``operation(...)`` makes one ``/api/v2/batch`` entry (or any request, given its route, method and
path); ``single(...)`` serialises a v1 request (the SDK's own body, plus the event id) and checks it
against the limits, raising :class:`~cioguard.operations.errors.OperationTooLarge` when even v1
cannot carry it. Plain functions over plain data, on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cioguard.operations import mapping
from cioguard.operations.construct import make_operation
from cioguard.operations.errors import OperationTooLarge
from cioguard.operations.model import Call, Endpoint, Operation, Route
from cioguard.operations.serialize import dumps, dumps_parts
from cioguard.operations.ulid import new_ulid

__all__ = ["EVENT_DATA_LIMIT", "REQUEST_LIMIT", "V2_ENTRY_LIMIT", "Builder", "operation", "single"]

#: Customer.io's limits (Track OpenAPI): one v2 batch entry, event data, one request.
V2_ENTRY_LIMIT = 32_000
EVENT_DATA_LIMIT = 100_000
REQUEST_LIMIT = 500_000
_V2_PATH = "/api/v2/batch"

#: ``builder(call, endpoint, span_context, now, mono) -> operations``: one per SDK method.
Builder = Callable[[Call, Endpoint, Any, float, float], list[Operation]]


def operation(
    call: Call,
    endpoint: Endpoint,
    span_context: Any,
    now: float,
    mono: float,
    body: bytes,
    shard_key: str,
    *,
    route: Route = "v2",
    http_method: str = "POST",
    path: str = _V2_PATH,
    event_id: Any = None,
    op_id: str | None = None,
) -> Operation:
    if op_id is None:  # (model.LATER instead: the sender's resolver makes it)
        op_id = new_ulid(now)
    return make_operation(
        endpoint,
        call.method,
        route,
        http_method,
        path,
        body,
        shard_key,
        op_id,
        event_id,
        mono,
        now,
        span_context,
    )


def single(
    call: Call,
    endpoint: Endpoint,
    span_context: Any,
    now: float,
    mono: float,
    shard_key: str,
    request: mapping.V1Request,
    event_id: Any = None,
    op_id: str | None = None,
) -> list[Operation]:
    http_method, path, body, labels = request
    raw = dumps(body, labels) if isinstance(labels, str) else dumps_parts(body, labels)
    if event_id is not None and len(raw) > EVENT_DATA_LIMIT:
        size = len(dumps(body["data"], "data"))
        if size > EVENT_DATA_LIMIT:
            raise OperationTooLarge(call.method, "event data", size, EVENT_DATA_LIMIT)
    if len(raw) > REQUEST_LIMIT:
        raise OperationTooLarge(call.method, "request body", len(raw), REQUEST_LIMIT)
    op = operation(
        call,
        endpoint,
        span_context,
        now,
        mono,
        raw,
        shard_key,
        route="single",
        http_method=http_method,
        path=path,
        event_id=event_id,
        op_id=op_id,
    )
    return [op]
