"""gunicorn settings for the reliability tests: preload, 4 sync workers, multiprocess metrics.

``PROMETHEUS_MULTIPROC_DIR`` is set (to an empty directory) by the test before gunicorn starts.
"""

from __future__ import annotations

import os
from typing import Any

from cioguard.metrics import child_exit  # noqa: F401  (gunicorn calls hooks by name)

wsgi_app = "wsgi_app:app"
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
preload_app = True
graceful_timeout = 15
loglevel = "warning"


def worker_exit(server: Any, worker: Any) -> None:
    import cioguard

    cioguard.shutdown(timeout=5.0)
