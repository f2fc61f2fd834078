"""Blocked time of web requests: one append per request, observed in bulk.

The ASGI, WSGI and Django middleware hand every request's blocked seconds (0 included) to
:func:`record` instead of observing ``customerio_http_request_blocked_seconds`` one at a time: a
histogram observation takes two locks (~0.8 µs), a few per cent of a small request under uvicorn.
The values reach the recorder in one bulk observation

* before every scrape served by :mod:`cioguard.metrics` (the middleware's ``/metrics``, the
  ``make_asgi_app``/``make_wsgi_app`` apps, the Django view),
* at least once a second, from a daemon thread started with the first value,
* at interpreter exit.

Code that reads the registry directly (a test asserting on the histogram) calls :func:`drain` first.
A forked child starts empty: the parent's pending values are the parent's to report.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable

from cioguard import forks
from cioguard.telemetry.recorder import get_recorder
from cioguard.threads import daemon_thread

__all__ = ["INTERVAL", "drain", "record", "tally"]

logger = logging.getLogger("cioguard")

#: The most seconds a value waits before the background drain reports it.
INTERVAL = 1.0

# deque.append and popleft are atomic: producers (event loops, WSGI threads) never take a lock, and
# a value appended while drain() runs is either taken now or by the next drain, never lost.
_pending: deque[float] = deque()
_started = False
_start_lock = threading.Lock()
_wake = threading.Event()  # never set: wait(INTERVAL) is an interruptible sleep


def record(seconds: float) -> None:
    """Tally one request's blocked seconds (the hot path: an append and a flag check)."""
    _pending.append(seconds)
    if not _started:
        _start()


#: The fastest :func:`record`: call it as ``blocked.tally(seconds)`` (a module attribute, never
#: imported by name). It is :func:`record` until the drain thread runs, then the deque's own
#: ``append`` (no Python frame); a forked child gets :func:`record` back so its drain starts.
tally: Callable[[float], None] = record


def drain() -> None:
    """Report every pending value to the current recorder now."""
    values: list[float] = []
    popleft = _pending.popleft
    try:
        while True:
            values.append(popleft())
    except IndexError:
        pass
    if not values:
        return
    recorder = get_recorder()
    try:
        bulk = getattr(recorder, "http_requests_blocked", None)
        if bulk is not None:
            bulk(values)
        else:  # a custom recorder written before the bulk method existed
            for value in values:
                recorder.http_request_blocked(value)
    except Exception:  # recorders must not raise; never into a request or a scrape
        logger.exception("cioguard: recording blocked time failed")


def _start() -> None:
    global _started, tally
    with _start_lock:
        if _started:
            return
        _started = True
        tally = _pending.append
        try:
            daemon_thread(_run, "cioguard-blocked-drain").start()
        except RuntimeError:  # no threads left (interpreter shutting down): scrapes and exit drain
            logger.warning("cioguard: could not start the blocked-time drain thread", exc_info=True)


def _run() -> None:
    while True:
        _wake.wait(INTERVAL)
        drain()


def _after_fork_in_child() -> None:
    global _started, _start_lock, tally
    # The drain thread did not survive the fork, the values belong to the parent, and the lock may
    # have been held by a parent thread at the fork.
    _pending.clear()
    _started = False
    tally = record
    _start_lock = threading.Lock()


forks.in_child(_after_fork_in_child)
atexit.register(drain)
