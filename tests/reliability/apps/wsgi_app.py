"""WSGI app for the gunicorn tests (``gunicorn -c gunicorn_conf.py``), wrapped in cioguard's middleware.

Imported once in the gunicorn master (``preload_app``): it instruments the SDK and, when
``APP_MASTER_EVENTS`` is set, sends that many events from the master *before* the workers are
forked (the children must never resend them). Routes:

- ``GET /healthz``: 200;
- ``GET /send?n=N``: N ``track`` calls as person ``pid<worker pid>`` with that worker's next
  sequence numbers; answers ``{"who": …, "seqs": [first, last]}``;
- ``GET /metrics``: cioguard's Prometheus exposition (multiprocess: every worker's files).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from customerio import CustomerIO

import cioguard
from cioguard.wsgi import CioGuardMiddleware

cioguard.instrument()
cio = CustomerIO("site-id", "track-key")
_lock = threading.Lock()
_seq = itertools.count()
_pid = os.getpid()

for _i in range(int(os.environ.get("APP_MASTER_EVENTS", "0"))):
    cio.track("master", "app_event", data={"who": "master", "seq": _i})


def _send(count: int) -> dict[str, Any]:
    global _seq, _pid
    with _lock:
        if os.getpid() != _pid:  # a forked worker numbers its own events from 0
            _pid, _seq = os.getpid(), itertools.count()
        seqs = [next(_seq) for _ in range(count)]
    who = f"pid{os.getpid()}"
    for seq in seqs:
        cio.track(who, "app_event", data={"who": who, "seq": seq})
    return {"who": who, "seqs": [seqs[0], seqs[-1]] if seqs else []}


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        document: dict[str, Any] = {"ok": True}
    elif path == "/send":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        document = _send(int(query.get("n", ["1"])[0]))
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    body = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


app = CioGuardMiddleware(_app)
