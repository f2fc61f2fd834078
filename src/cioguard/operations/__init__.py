"""Call → operation model: argument binding, serialisation, v1 → v2 mapping (plain data).

The hot path of every patched SDK call, in order::

    from cioguard.operations.calls import bind
    from cioguard.operations.build import build, track_endpoint

    endpoint = track_endpoint(site_id, api_key, "https://track.customer.io")
    call = bind("track", args, kwargs)      # the SDK's own TypeError / CustomerIOException
    operations = build(call, endpoint)      # SerializationError / OperationTooLarge

Modules: :mod:`~cioguard.operations.model` (the shared data types), :mod:`~.calls` (binding),
:mod:`~.serialize` (JSON bytes with the SDK's semantics), :mod:`~.ulid` (fast ULIDs),
:mod:`~.mapping` (v1 → v2), :mod:`~.build` (operations, routes, sizes, endpoints),
:mod:`~.routes` (v2 entry or v1 request, the size limits), :mod:`~.deferred` (the caller's snapshot
of an event and what the sender completes: lane, email → id, ULID), :mod:`~.errors`. Only
``model`` is imported here, so importing it stays cheap.
"""

from cioguard.operations.model import ApiKind, Call, Endpoint, Operation, Route

__all__ = ["ApiKind", "Call", "Endpoint", "Operation", "Route"]
