"""The ``/metrics`` view (see :mod:`cioguard.django.urls`)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from cioguard.django.apps import cioguard_options
from cioguard.metrics import exposition


@require_http_methods(["GET", "HEAD"])
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of cioguard's metrics (blocking; cheap outside multiprocess mode)."""
    registry = (cioguard_options() or {}).get("registry")
    headers, body = exposition(
        registry,
        request.headers.get("Accept", ""),
        request.headers.get("Accept-Encoding", ""),
        request.META.get("QUERY_STRING", ""),
    )
    response = HttpResponse(body if request.method == "GET" else b"", status=200)
    for name, value in headers:
        response[name] = value
    response["Content-Length"] = str(len(body))
    return response
