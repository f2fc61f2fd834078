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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from typing_extensions import Unpack

from cioguard import exits
from cioguard.config import InstrumentOptions, load_options
from cioguard.instrumentation.instrumentor import CustomerIOInstrumentor, active_runtime, swap_runtime
from cioguard.instrumentation.runtime import force_synchronous

logger = logging.getLogger("cioguard")

#: How long a second instrument() with other options waits for what is queued to be delivered.
_REINSTRUMENT_FLUSH_SECONDS = 10.0


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
                old.shutdown(_REINSTRUMENT_FLUSH_SECONDS)  # delivers what it queued
            exits.install()
            return
        else:
            # After cioguard.shutdown() the sender is gone: start over with a fresh one.
            instrumentor.uninstrument(timeout=0.0)
    instrumentor.instrument(**given)
    exits.install()


def uninstrument(timeout: float = 10.0) -> None:
    """Flush what is queued (up to ``timeout`` s), stop the sender and restore the SDK exactly."""
    CustomerIOInstrumentor().uninstrument(timeout=timeout)
    exits.uninstall()


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
    """Queue, delivered, dropped-by-reason, retries … as a plain dict (for scripts and tests)."""
    runtime = active_runtime()
    if runtime is None:
        return {"instrumented": False}
    result = runtime.stats()  # the sender's figures plus fallbacks
    result.update(instrumented=True, mode=runtime.options.mode)
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
