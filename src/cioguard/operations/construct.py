"""Fast construction of :class:`~cioguard.operations.model.Operation` for the caller's hot path.

``make_operation(endpoint, method, route, http_method, path, body, shard_key, op_id, event_id,
enqueued_at, created_at, span_context)`` returns what ``Operation(endpoint=…, …)`` returns. Calling a
class with 12 keyword arguments makes CPython build a dict for ``__init__`` (1.5 µs on the reference
machine); a positional function call plus slot stores takes 0.2 µs. Invariant: every slot that
``Operation.__init__`` sets is set here to the same value — ``tests/operations/test_build.py``
compares the two slot by slot, so a new field in ``model.py`` fails that test until it is added here.
"""

from __future__ import annotations

from typing import Any

from cioguard.operations.model import V2_REQUEST, Endpoint, Operation, Route

__all__ = ["make_operation"]

_new_operation = Operation.__new__


def make_operation(
    endpoint: Endpoint,
    method: str,
    route: Route,
    http_method: str,
    path: str,
    body: bytes,
    shard_key: str,
    op_id: str,
    event_id: Any,
    enqueued_at: float,
    created_at: float,
    span_context: Any,
) -> Operation:
    """``Operation(...)``, positionally: the same object, 1.3 µs sooner (see the module docstring)."""
    operation = _new_operation(Operation)
    operation.endpoint = endpoint
    operation.method = method
    request = (route, http_method, path)
    operation._request = V2_REQUEST if request == V2_REQUEST else request
    # orjson never shrinks its output buffer: a 140-byte result keeps a 4 KB allocation alive for as
    # long as the operation waits in the queue. A compact copy costs ~0.3 us and saves ~4 KB each.
    operation._body = bytes(memoryview(body))
    operation._shard_key = shard_key
    operation._op_id = op_id
    operation._event_id = event_id
    operation._enqueued_at = enqueued_at
    operation.created_at = created_at
    operation.span_context = span_context
    operation._caller_us = 0
    operation._pending = None
    return operation
