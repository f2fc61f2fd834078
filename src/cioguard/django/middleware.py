"""``MIDDLEWARE = ["cioguard.django.CioGuardMiddleware", ...]``: request scopes and blocked time.

Put it first so it measures the whole request. For every request it opens a
:class:`cioguard.scope.RequestScope` (read by CIO007 and CIO009; its route is the URL pattern Django
resolved, looked up only when a rule asks) and afterwards records the seconds the request spent
blocked inside Customer.io calls in ``customerio_http_request_blocked_seconds`` — for every request,
0 included. Django picks the mode: sync in a WSGI chain, async (no thread hop) in an ASGI chain; sync
views under ASGI run in a thread that sees the same scope (asgiref copies the context).

Time spent while the server iterates a streaming response is not counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from cioguard import blocked
from cioguard.scope import RequestScope, _current, current_request

__all__ = ["CioGuardMiddleware", "route_template"]

GetResponse = Callable[[HttpRequest], Any]

# Bound once: the request path calls them without attribute lookups.
_set_scope = _current.set
_reset_scope = _current.reset


def route_template(request: HttpRequest) -> str | None:
    """The resolved URL pattern (``/users/<int:pk>/``) of ``request``, or ``None`` before routing."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    route = getattr(match, "route", None)
    if isinstance(route, str) and route:
        return route if route.startswith("/") else "/" + route
    name = getattr(match, "view_name", None)
    return name if isinstance(name, str) and name else None


class CioGuardMiddleware:
    """Django middleware for cioguard (see the module docstring); sync and async capable."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Tells Django's handler to await this instance instead of wrapping it in a thread.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self._acall(request)
        outer = current_request()
        if outer is not None:
            # Inside another cioguard middleware (ASGI/WSGI wrapper): that one measures the request;
            # only Django knows the route.
            outer.route_from(request, route_template)
            response: HttpResponseBase = self.get_response(request)
            return response
        current = RequestScope.routed(request.method or "", request, route_template)
        token = _set_scope(current)
        try:
            response = self.get_response(request)
        finally:
            _reset_scope(token)
            blocked.tally(current.blocked_seconds)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        outer = current_request()
        if outer is not None:
            outer.route_from(request, route_template)
            response: HttpResponseBase = await self.get_response(request)
            return response
        current = RequestScope.routed(request.method or "", request, route_template)
        token = _set_scope(current)
        try:
            response = await self.get_response(request)
        finally:
            _reset_scope(token)
            blocked.tally(current.blocked_seconds)
        return response
