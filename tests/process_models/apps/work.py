"""The unit of work every process-model app runs: ``send(worker, count)`` tracks ``count`` events.

Each event is ``track("w<worker>", "unit_of_work", {"who": "w<worker>", "seq": …})`` with seq
``worker * count + i``, so the test can tell exactly which ones arrived. Nothing here flushes.
"""

from __future__ import annotations

import os

from customerio import CustomerIO

_clients: dict[int, CustomerIO] = {}


def client() -> CustomerIO:
    """One SDK client per process (a forked child builds its own)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = CustomerIO("site-id", "track-key")
    return _clients[pid]


def send(worker: int, count: int) -> int:
    """Track ``count`` events for person ``w<worker>``; returns the pid that sent them."""
    cio = client()
    who = f"w{worker}"
    for i in range(count):
        cio.track(who, "unit_of_work", data={"who": who, "seq": worker * count + i})
    return os.getpid()
