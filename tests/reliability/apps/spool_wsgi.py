"""WSGI app for the gunicorn spool test: ``gunicorn -c spool_gunicorn_conf.py`` (preload, 4 workers).

Imported once in the master, which instruments the SDK (``CIOGUARD_SPOOL_PATH`` set) and starts
a thread sending ``track("master", …)`` all the time (bounded: at most ``MASTER_SECONDS``), so
the workers are forked — and re-forked on every ``HUP`` — while the master's spool is writing.
Routes: ``/send?n=N`` (N events as ``pid<worker pid>``, answers ``{"who", "seqs"}``) and
``/stats`` (``{"pid", "spool": cioguard.stats()["spool"]}``).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from customerio import CustomerIO

import cioguard

MASTER_SECONDS = 60.0

cioguard.instrument(pitfalls="off")
cio = CustomerIO("site-id", "track-key")
_lock = threading.Lock()
_seq = itertools.count()
_pid = os.getpid()


def _master_sends() -> None:
    end = time.monotonic() + MASTER_SECONDS
    for i in itertools.count():
        if time.monotonic() > end:
            return
        cio.track("master", "spool_event", data={"who": "master", "seq": i})
        if i % 5 == 4:
            time.sleep(0.01)


threading.Thread(target=_master_sends, name="master-sender", daemon=True).start()


def _send(count: int) -> dict[str, Any]:
    global _seq, _pid
    with _lock:
        if os.getpid() != _pid:  # a forked worker numbers its own events from 0
            _pid, _seq = os.getpid(), itertools.count()
        seqs = [next(_seq) for _ in range(count)]
    who = f"pid{os.getpid()}"
    for seq in seqs:
        cio.track(who, "spool_event", data={"who": who, "seq": seq})
    return {"who": who, "seqs": [seqs[0], seqs[-1]] if seqs else []}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/send":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        document: dict[str, Any] = _send(int(query.get("n", ["1"])[0]))
    else:
        document = {"pid": os.getpid(), "spool": cioguard.stats().get("spool")}
    body = json.dumps(document).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
