"""Django integration: instrument at start-up, request scopes, blocked-time metric and ``/metrics``.

In ``settings.py``::

    INSTALLED_APPS += ["cioguard.django"]              # cioguard.instrument(**CIOGUARD) in ready()
    MIDDLEWARE = ["cioguard.django.CioGuardMiddleware", *MIDDLEWARE]   # first: measures everything
    CIOGUARD = {"pitfalls": "warn", "spool_path": "/var/lib/app/cioguard.sqlite"}   # optional

and in ``urls.py``::

    urlpatterns += [path("", include("cioguard.django.urls"))]     # serves /metrics

* ``CIOGUARD`` takes exactly the keyword options of :func:`cioguard.instrument` (``CIOGUARD_*``
  environment variables still apply). An invalid option raises ``ImproperlyConfigured`` at start-up.
  ``CIOGUARD = None`` leaves the SDK uninstrumented (e.g. in a test settings module).
* The middleware works in sync (WSGI: runserver, gunicorn) and async (ASGI: uvicorn, daphne) chains
  without a thread hop. Each request gets a :class:`cioguard.scope.RequestScope` whose route is the
  URL pattern Django resolved (``/users/<int:pk>/``, never the raw path), so CIO007 (a Customer.io
  call blocked a request) and CIO009 (a client built per request) point at the view's line. Every
  request's blocked time goes to ``customerio_http_request_blocked_seconds``.
* ``/metrics`` serves the ``registry`` given in ``CIOGUARD`` or the process registry; under gunicorn
  with several workers set ``PROMETHEUS_MULTIPROC_DIR`` before start (see :mod:`cioguard.metrics`) and
  each scrape merges every worker's files.
* Exit: what is queued is delivered when the process exits (cioguard's exit handling, bounded by
  ``exit_timeout``): gunicorn and runserver workers, and uvicorn — Django's ASGI handler does not speak
  ``lifespan``; wrap it in :class:`cioguard.asgi.CioGuardMiddleware` to flush on lifespan shutdown too
  (requests are then measured once, by whichever middleware is outermost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cioguard.django.middleware import CioGuardMiddleware

__all__ = ["CioGuardMiddleware"]


def __getattr__(name: str) -> Any:
    # Lazy: Django imports "cioguard.django" for INSTALLED_APPS before settings allow model imports.
    if name == "CioGuardMiddleware":
        from cioguard.django.middleware import CioGuardMiddleware

        return CioGuardMiddleware
    raise AttributeError(f"module 'cioguard.django' has no attribute {name!r}")
