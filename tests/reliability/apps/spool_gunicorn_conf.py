"""gunicorn settings for the spool test: preload, 4 sync workers, a short worker timeout so a
frozen worker would be visible (killed and logged) within the test."""

from __future__ import annotations

wsgi_app = "spool_wsgi:app"
workers = 4
preload_app = True
graceful_timeout = 10
timeout = 20
loglevel = "warning"
