"""The front doors: ``instrument``, ``uninstrument``, ``flush``, ``shutdown``, ``stats``, ``synchronous``.

::

    import cioguard

    cioguard.instrument()                 # options as keywords or CIOGUARD_* variables
    cio.track("user-1", "signed_up")      # returns None at once; delivered in the background
    cioguard.flush(timeout=5)             # e.g. at the end of a script or a Celery task
    with cioguard.synchronous():
        response = cio.identify("user-1", email="a@example.com")   # the SDK's real response

Whatever way the process leaves (interpreter exit, SIGTERM, the end of a ``multiprocessing`` or
Celery child), what is still queued is flushed within ``exit_timeout`` seconds (see
:mod:`cioguard.exits`). In
background mode Track methods return ``None`` instead of the SDK's ``requests.Response``: use
:func:`synchronous` for the rare caller that reads the response.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from typing_extensions import Unpack

from cioguard import exits, forks
from cioguard.config import InstrumentOptions, load_options
from cioguard.instrumentation.instrumentor import CustomerIOInstrumentor, active_runtime, swap_runtime
from cioguard.instrumentation.runtime import Runtime, force_synchronous

logger = logging.getLogger("cioguard")

#: How long a second instrument() with other options waits for what is queued to be delivered.
_REINSTRUMENT_FLUSH_SECONDS = 10.0
#: Figures of the runtimes later instrument() calls replaced, added to stats() ("dropped:<reason>").
_retired: dict[str, int] = {}
#: The last figures of the runtime uninstrument() stopped (stats() until the next instrument()).
_final: dict[str, Any] = {}
_ADDED_UP = ("accepted", "delivered", "retries", "requests", "rate_limited", "errors")


def instrument(**options: Unpack[InstrumentOptions]) -> None:
    """Patch the ``customerio`` SDK; idempotent. See the README's configuration table for options.

    Calling it again with the same options (or none) does nothing. Called again with options that
    change something — typically an application's own ``instrument(track_url=...)`` under
    ``opentelemetry-instrument``, which instrumented first from ``CIOGUARD_*`` variables alone —
    it applies them over the earlier call's: what is queued is flushed first, then a fresh sender
    starts. After :func:`shutdown` it starts a fresh sender with the new options.

    Invalid options raise ``ValueError`` (naming the option or ``CIOGUARD_*`` variable and the
    accepted values) or ``TypeError`` (an unknown option) here, at the caller's line.
    """
    load_options(options)  # validate before touching anything
    _final.clear()
    instrumentor = CustomerIOInstrumentor()
    given: dict[str, Any] = dict(options)
    if instrumentor.is_instrumented_by_opentelemetry:
        runtime = active_runtime()
        if runtime is None or not runtime.stopped:
            merged = given if runtime is None else {**runtime.explicit, **given}
            if runtime is None or not given or load_options(merged) == runtime.options:
                logger.debug("cioguard: already instrumented with these options")
                return
            logger.info(
                "cioguard: instrument() called again with other options (%s): applying them",
                ", ".join(sorted(given)),
            )
            old = swap_runtime(merged)  # the SDK stays patched throughout
            if old is not None:
                _retire(old)
            exits.install()
            _until_uwsgi_forks()  # (the new runtime too, in a uWSGI master)
            return
        else:
            # After cioguard.shutdown() the sender is gone: start over with a fresh one.
            instrumentor.uninstrument(timeout=0.0)
            _retired.clear()
    instrumentor.instrument(**given)
    exits.install()
    _until_uwsgi_forks()


def _until_uwsgi_forks() -> None:
    """In a uWSGI master loading the app its workers fork from (no ``--lazy-apps``), calls made
    meanwhile (a start-up event) go through the SDK synchronously: uWSGI forks without Python's
    fork hooks, and a sender thread of the master's holding the GIL at that moment would leave a
    worker hung for good. Each worker then queues as usual (:meth:`Runtime.held_until_fork`)."""
    forks.install_uwsgi_hook()
    runtime = active_runtime()
    if runtime is not None and runtime.fork_origin is None and forks.uwsgi_master_before_fork():
        runtime.fork_origin = os.getpid()
        forks.in_uwsgi_worker(runtime.forked)


def _retire(old: Runtime) -> None:
    """Deliver what the runtime a second ``instrument()`` replaced had queued; its figures stay in
    :func:`stats`. A call that reaches it after that (a thread already inside one of its wrappers
    when they were swapped) goes to the new sender."""
    new = active_runtime()
    if new is not None and hasattr(old.engine, "successor"):
        old.engine.successor = new.engine
    old.shutdown(_REINSTRUMENT_FLUSH_SECONDS)
    figures = old.stats()
    for key in _ADDED_UP:
        _retired[key] = _retired.get(key, 0) + int(figures.get(key, 0))
    for reason, count in figures.get("dropped", {}).items():
        _retired["dropped:" + reason] = _retired.get("dropped:" + reason, 0) + int(count)


def uninstrument(timeout: float = 10.0) -> None:
    """Flush what is queued (up to ``timeout`` s), stop the sender and restore the SDK exactly.
    :func:`stats` keeps the final figures until the next :func:`instrument`."""
    runtime = active_runtime()
    CustomerIOInstrumentor().uninstrument(timeout=timeout)
    exits.uninstall()
    _final.clear()
    if runtime is not None:
        _final.update(_figures(runtime))
    _retired.clear()


def flush(timeout: float = 10.0) -> bool:
    """Send everything queued now: ``True`` only when everything accepted before the call was
    delivered; ``False`` on timeout or when any of it was dropped or rejected (``stats()`` says why).
    Pitfall counts of repeated findings reach the metrics before it returns."""
    runtime = active_runtime()
    return True if runtime is None else runtime.flush(timeout)


def shutdown(timeout: float = 10.0) -> None:
    """Flush, then stop the sender. Later background calls are counted as ``dropped{reason="shutdown"}``."""
    runtime = active_runtime()
    if runtime is not None:
        runtime.shutdown(timeout)


def stats() -> dict[str, Any]:
    """Queue, delivered, dropped-by-reason, retries … as a plain dict (for scripts and tests).
    After :func:`uninstrument`: the final figures, with ``instrumented`` False."""
    runtime = active_runtime()
    if runtime is None:
        return {**_final, "instrumented": False}
    result = _figures(runtime)
    result.update(instrumented=True, mode=runtime.options.mode)
    return result


def _figures(runtime: Runtime) -> dict[str, Any]:
    result = runtime.stats()  # the sender's figures plus fallbacks
    for key, count in _retired.items():  # those of runtimes replaced by a later instrument()
        if key.startswith("dropped:"):
            dropped = result.setdefault("dropped", {})
            dropped[key[8:]] = dropped.get(key[8:], 0) + count
        elif key in result:
            result[key] += count
    return result


@contextmanager
def synchronous(flush_timeout: float = 5.0) -> Iterator[None]:
    """Inside the block, SDK calls really block and return the SDK's own response.

    What was queued before is flushed first (up to ``flush_timeout`` s), so a synchronous call
    cannot overtake an earlier background call for the same person.
    """
    runtime = active_runtime()
    if runtime is not None:
        runtime.flush(flush_timeout)
    token = force_synchronous.set(True)
    try:
        yield
    finally:
        force_synchronous.reset(token)
