"""Request scopes: tell cioguard that the current code runs inside a web request.

The ASGI, WSGI and Django middleware open a scope for every HTTP request; any other framework (a job
runner, a gRPC server) can do the same::

    from cioguard.scope import request_scope

    with request_scope(method="POST", route="/signup") as scope:
        handle(request)
    print(scope.blocked_seconds)   # time spent blocked in Customer.io calls

Pitfall rules read the scope (CIO007 blocking call in a request, CIO009 client built per
request) and the instrumentation adds the time each blocking Customer.io call took to
``blocked_seconds``. The scope travels in a ``contextvars.ContextVar``, so it follows asyncio tasks
and ``contextvars.copy_context()`` but not plain new threads.

Middleware on a hot path can skip the context manager: :func:`enter` returns a token for
:func:`leave`, and ``RequestScope(route_source=..., route_reader=...)`` reads the route template
only when something asks for it (the framework routes the request after the scope opened).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

__all__ = ["RequestScope", "current_request", "enter", "leave", "request_scope"]


class RequestScope:
    """What cioguard knows about the request the current code serves.

    Attributes:
        method: HTTP method (``GET``, ``POST``…), or ``""`` when unknown.
        route: the route template (``/users/{id}``) when the framework provides one — never the raw
            path. Given, set later, or read on demand through ``route_reader(route_source)``.
        blocked_seconds: seconds this request spent blocked inside Customer.io calls so far.
        calls: Customer.io calls that blocked during this request.
        clients_built: SDK clients constructed during this request (CIO009).
    """

    # Slots: one of these is built per HTTP request, on the hot path of every middleware.
    __slots__ = (
        "_route",
        "_route_reader",
        "_route_source",
        "blocked_seconds",
        "calls",
        "clients_built",
        "method",
    )

    def __init__(
        self,
        method: str = "",
        route: str | None = None,
        blocked_seconds: float = 0.0,
        calls: int = 0,
        clients_built: int = 0,
        *,
        route_source: Any = None,
        route_reader: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.method = method
        self._route = route
        self._route_source = route_source
        self._route_reader = route_reader
        self.blocked_seconds = blocked_seconds
        self.calls = calls
        self.clients_built = clients_built

    @property
    def route(self) -> str | None:
        if self._route is None and self._route_reader is not None:
            # Cache only a found template: before routing the reader has nothing yet.
            self._route = self._route_reader(self._route_source)
        return self._route

    @route.setter
    def route(self, template: str | None) -> None:
        self._route = template

    def route_from(self, source: Any, reader: Callable[[Any], str | None]) -> None:
        """Read the route through ``reader(source)`` from now on, unless one is already known
        (an inner framework middleware knows the route; the outer ASGI/WSGI one does not)."""
        if self.route is None:
            self._route_source, self._route_reader = source, reader

    def __repr__(self) -> str:
        return (
            f"RequestScope(method={self.method!r}, route={self.route!r}, "
            f"blocked_seconds={self.blocked_seconds!r}, calls={self.calls!r}, "
            f"clients_built={self.clients_built!r})"
        )


_current: ContextVar[RequestScope | None] = ContextVar("cioguard_request_scope", default=None)


def current_request() -> RequestScope | None:
    """The scope of the request being served, or ``None`` outside any request."""
    return _current.get()


def enter(scope: RequestScope) -> Token[RequestScope | None]:
    """Make ``scope`` current; pass the token to :func:`leave` in the same context."""
    return _current.set(scope)


def leave(token: Token[RequestScope | None]) -> None:
    """Restore the scope that was current before :func:`enter`."""
    _current.reset(token)


@contextmanager
def request_scope(method: str = "", route: str | None = None) -> Iterator[RequestScope]:
    """Mark the code inside the ``with`` block as serving one web request."""
    scope = RequestScope(method=method, route=route)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
