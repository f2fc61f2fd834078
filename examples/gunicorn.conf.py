"""gunicorn configuration for ``flask_app.py``: ``gunicorn -c examples/gunicorn.conf.py``.

* ``preload_app``: the app (and ``cioguard.instrument()``) is imported once in the master; cioguard
  starts its sender thread lazily, so each forked worker gets its own sender and queue.
* Prometheus multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` must be set before prometheus_client
  is imported — this file runs before the app is loaded, so it sets a default here and empties the
  directory once per master start. ``child_exit`` drops a dead worker's live gauges.
* ``worker_exit`` (optional: cioguard's exit hooks already flush a stopping worker within
  ``exit_timeout``): an explicit flush of what the worker still has queued, within 5 s.

Environment: ``PORT`` (default 8000), ``GUNICORN_BIND`` (default ``127.0.0.1:$PORT``; use
``0.0.0.0:8000`` in a container), ``GUNICORN_WORKERS`` (default 4).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

chdir = os.path.dirname(os.path.abspath(__file__))
wsgi_app = "flask_app:app"
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
preload_app = True
graceful_timeout = 10

_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"cioguard-metrics-{os.getuid()}")
)
# Empty the directory once per master (this file is read again on reload, with the marker set).
if os.environ.get("_CIOGUARD_METRICS_DIR_READY") != _metrics_dir:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)
    os.environ["_CIOGUARD_METRICS_DIR_READY"] = _metrics_dir

from cioguard.metrics import child_exit  # noqa: E402, F401  (gunicorn calls hooks by name)


def worker_exit(server: Any, worker: Any) -> None:
    import cioguard

    # Deliver what this worker still holds; the process exits right after.
    cioguard.flush(timeout=5.0)
