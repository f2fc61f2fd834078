"""gunicorn settings for the multiprocess test (the documented setup: cioguard's child_exit hook)."""

from cioguard.metrics import child_exit  # noqa: F401  (gunicorn calls hooks by name)

workers = 2
worker_class = "sync"
graceful_timeout = 5
