"""A bare WSGI app (no cioguard middleware, no server hooks): ``/send?w=<worker>&n=<count>``
tracks ``n`` events through ``work.send`` and answers ``<pid>``; ``/healthz`` answers ``ok``.

Only ``cioguard.instrument()`` at import, so the server's own worker exit is what must deliver.
Served by gunicorn (``wsgi_app:app``) and uWSGI (``--wsgi-file wsgi_app.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent))  # uWSGI does not add the app's folder

import work

import cioguard

cioguard.instrument()
# A call at import (a start-up event): under uWSGI or gunicorn --preload it is made in the master,
# whose sender is running when the workers fork.
BOOT_EVENTS = int(os.environ.get("BOOT_EVENTS", "0"))
if BOOT_EVENTS:
    work.send(99, BOOT_EVENTS)
# uWSGI only: an app that uses uwsgidecorators (imported after cioguard), or that sets its own
# post-fork hook after cioguard's (which then never runs).
if os.environ.get("APP_POSTFORK") == "decorators":
    import uwsgidecorators  # noqa: F401
elif os.environ.get("APP_POSTFORK") == "direct":
    import uwsgi

    uwsgi.post_fork_hook = lambda: None


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/sync":  # three calls whose responses are read
        cio = work.client()
        with cioguard.synchronous():
            results = [cio.track("w98", "read_back", data={"who": "w98", "seq": i}) for i in range(3)]
        body = ",".join(type(result).__name__ for result in results).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if environ.get("PATH_INFO") == "/send":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        work.send(int(query["w"][0]), int(query["n"][0]))
        body = str(os.getpid()).encode()
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app  # uWSGI's default callable name
