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
:func:`leave`, and ``RequestScope.routed(method, source, reader)`` reads the route template only
when something asks for it (the framework routes the request after the scope opened). The ASGI and
WSGI middleware go further: :func:`enter_asgi` / :func:`enter_wsgi` make the ASGI scope dict or the
WSGI environ itself current, and :func:`current_request` builds the RequestScope from it on first
use (stored in that dict under ``"cioguard.request_scope"``) — most requests never make a blocking
Customer.io call, so most never build one; :func:`blocked_seconds_of` reads the total afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

__all__ = [
    "RequestScope",
    "asgi_route_template",
    "blocked_seconds_of",
    "current_request",
    "enter",
    "enter_asgi",
    "enter_wsgi",
    "leave",
    "request_scope",
]


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

    # Class-level defaults: a middleware builds one scope per request (see routed()), and most
    # requests never write these, so building one sets only what differs.
    blocked_seconds: float = 0.0
    calls: int = 0
    clients_built: int = 0
    _route: str | None = None
    _route_source: Any = None
    _route_reader: Callable[[Any], str | None] | None = None

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

    @classmethod
    def routed(cls, method: str, source: Any, reader: Callable[[Any], str | None]) -> RequestScope:
        """A fresh scope whose route is read through ``reader(source)`` when asked (the fast path)."""
        scope = cls.__new__(cls)
        scope.method = method
        scope._route_source = source
        scope._route_reader = reader
        return scope

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


# Holds a RequestScope, or — the ASGI/WSGI middleware's fast path — the ASGI scope dict or WSGI
# environ itself, turned into a RequestScope (stored in the dict under _ASGI_KEY) only when
# something asks: most requests never make a blocking Customer.io call, so most never build one.
_current: ContextVar[RequestScope | MutableMapping[str, Any] | None] = ContextVar(
    "cioguard_request_scope", default=None
)
_ASGI_KEY = "cioguard.request_scope"
Marker = Token[RequestScope | MutableMapping[str, Any] | None]


def current_request() -> RequestScope | None:
    """The scope of the request being served, or ``None`` outside any request."""
    value = _current.get()
    if value is None or isinstance(value, RequestScope):
        return value
    found: RequestScope | None = value.get(_ASGI_KEY)
    if found is None:
        # setdefault: the event loop and a sync endpoint's worker thread asking at once share one.
        found = value.setdefault(_ASGI_KEY, _scope_of(value))
    return found


def _scope_of(request: MutableMapping[str, Any]) -> RequestScope:
    if "REQUEST_METHOD" in request:
        # A WSGI environ: no route template in it (cioguard.wsgi.set_route() sets one).
        method = request["REQUEST_METHOD"]
        return RequestScope(method if isinstance(method, str) else "")
    method = request.get("method", "")
    return RequestScope.routed(method if isinstance(method, str) else "", request, asgi_route_template)


def enter(scope: RequestScope) -> Marker:
    """Make ``scope`` current; pass the token to :func:`leave` in the same context."""
    return _current.set(scope)


def enter_asgi(asgi_scope: MutableMapping[str, Any]) -> Marker:
    """Make the request ``asgi_scope`` describes current, building its RequestScope only on demand."""
    return _current.set(asgi_scope)


def enter_wsgi(environ: MutableMapping[str, Any]) -> Marker:
    """Make the request a WSGI ``environ`` describes current, building its RequestScope on demand."""
    return _current.set(environ)


def blocked_seconds_of(asgi_scope: MutableMapping[str, Any]) -> float:
    """The blocked seconds of a request entered with :func:`enter_asgi` or :func:`enter_wsgi`
    (0 if nothing asked)."""
    found: RequestScope | None = asgi_scope.get(_ASGI_KEY)
    return 0.0 if found is None else found.blocked_seconds


def leave(token: Marker) -> None:
    """Restore the scope that was current before :func:`enter`."""
    _current.reset(token)


def asgi_route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's template (``/users/{user_id}``) from ``scope["route"]``, else ``None``
    (Starlette and FastAPI routers store the matched route there, in place, before the endpoint)."""
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else None


@contextmanager
def request_scope(method: str = "", route: str | None = None) -> Iterator[RequestScope]:
    """Mark the code inside the ``with`` block as serving one web request."""
    scope = RequestScope(method=method, route=route)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
