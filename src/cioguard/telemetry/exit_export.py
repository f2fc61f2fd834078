"""Export pending spans and metrics when a process leaves without ``atexit`` (a death by signal).

The OpenTelemetry SDK exports what its batch processors and readers hold from an ``atexit`` hook.
Processes that cioguard's exit hooks deliver for — SIGTERM with no handler of the app's, uvicorn
re-raising its signal, ``multiprocessing`` and billiard children leaving through ``os._exit`` —
never run it, so the spans of the very calls just delivered were lost. After its exit flush,
:func:`cioguard.exits.exit_flush` calls::

    export_pending(options.tracer_provider, options.meter_provider)   # and the global ones

Never raises, and returns within :data:`EXPORT_SECONDS` whatever the exporters do: the SDK's
``BatchSpanProcessor.force_flush`` ignores its timeout and exports on the calling thread (an OTLP
exporter allows 10 s per attempt), so the flushes run in a daemon thread the exit waits for only
that long.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from cioguard.threads import daemon_thread

logger = logging.getLogger("cioguard")

__all__ = ["EXPORT_SECONDS", "export_pending"]

#: The most the export may hold the exit up (the process is leaving: a collector that does not
#: answer must not keep it alive).
EXPORT_SECONDS = 2.0


def export_pending(tracer_provider: Any, meter_provider: Any, seconds: float = EXPORT_SECONDS) -> None:
    """``force_flush`` the given tracer and meter providers (None: none given) and the global
    ones; returns within ``seconds``. Never raises."""
    try:
        flushes = [
            flush
            for flush in (
                getattr(provider, "force_flush", None)
                for provider in _providers(tracer_provider, meter_provider)
            )
            if callable(flush)  # SDK providers have it; the API's no-op/proxy ones do not
        ]
        if not flushes:
            return
        worker = daemon_thread(_flush_all, "cioguard-otel-export", (flushes, int(seconds * 1000)))
        worker.start()
        worker.join(seconds)
    except Exception:
        logger.debug("cioguard: exporting pending telemetry at exit failed", exc_info=True)


def _flush_all(flushes: list[Any], timeout_millis: int) -> None:
    for flush in flushes:
        with contextlib.suppress(Exception):
            flush(timeout_millis)


def _providers(tracer_provider: Any, meter_provider: Any) -> list[Any]:
    from opentelemetry import metrics, trace

    found: list[Any] = []
    for provider in (
        tracer_provider,
        trace.get_tracer_provider(),
        meter_provider,
        metrics.get_meter_provider(),
    ):
        if provider is not None and all(provider is not seen for seen in found):
            found.append(provider)
    return found
