"""WSGI app for the gunicorn multiprocess test: records through PrometheusRecorder, serves /metrics.

``/work`` records one call and sets the gauges; ``/pid`` answers the worker's pid; ``/metrics`` is
:func:`cioguard.metrics.make_wsgi_app` (per-scrape multiprocess registry).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from cioguard.metrics import make_wsgi_app
from cioguard.telemetry import PrometheusRecorder

recorder = PrometheusRecorder()
metrics = make_wsgi_app()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/metrics":
        return metrics(environ, start_response)
    if path == "/work":
        recorder.call("track", "background", 1e-5)
        recorder.queue_size(1)
        recorder.queue_capacity(100)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
