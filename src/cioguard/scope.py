"""Request scopes: tell cioguard that the current code runs inside a web request.

The ASGI and WSGI middleware open a scope for every HTTP request; any other framework (a job
runner, a gRPC server) can do the same::

    from cioguard.scope import request_scope

    with request_scope(method="POST", route="/signup") as scope:
        handle(request)
    print(scope.blocked_seconds)   # time spent blocked in Customer.io calls

Pitfall rules read the scope (CIO007 blocking call in a request, CIO009 client built per
request) and the instrumentation adds the time each blocking Customer.io call took to
``blocked_seconds``. The scope travels in a ``contextvars.ContextVar``, so it follows asyncio tasks
and ``contextvars.copy_context()`` but not plain new threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestScope:
    """What cioguard knows about the request the current code serves."""

    #: HTTP method (``GET``, ``POST``…), or ``""`` when unknown.
    method: str = ""
    #: The route template (``/users/{id}``) when the framework provides one — never the raw path.
    route: str | None = None
    #: Seconds this request spent blocked inside Customer.io calls so far.
    blocked_seconds: float = 0.0
    #: Customer.io calls made during this request.
    calls: int = 0
    #: SDK clients constructed during this request (CIO009).
    clients_built: int = 0


_current: ContextVar[RequestScope | None] = ContextVar("cioguard_request_scope", default=None)


def current_request() -> RequestScope | None:
    """The scope of the request being served, or ``None`` outside any request."""
    return _current.get()


@contextmanager
def request_scope(method: str = "", route: str | None = None) -> Iterator[RequestScope]:
    """Mark the code inside the ``with`` block as serving one web request."""
    scope = RequestScope(method=method, route=route)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
