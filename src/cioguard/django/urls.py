"""``path("", include("cioguard.django.urls"))`` serves cioguard's Prometheus metrics at ``/metrics``.

Mount it under another prefix to move it (``path("internal/", include(...))`` → ``/internal/metrics``).
The view answers ``GET``/``HEAD`` with the text format (OpenMetrics when asked), gzip when accepted,
``?name[]=`` filters; the registry is ``CIOGUARD["registry"]`` if set, else the process registry or,
with ``PROMETHEUS_MULTIPROC_DIR``, every worker's files. Protect it as you protect other internal URLs.
"""

from __future__ import annotations

from django.urls import path

from cioguard.django.views import metrics

app_name = "cioguard"
urlpatterns = [path("metrics", metrics, name="metrics")]
