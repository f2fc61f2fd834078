"""Export pending spans and metrics when a process leaves without ``atexit`` (a death by signal).

The OpenTelemetry SDK exports what its batch processors and readers hold from an ``atexit`` hook.
Processes that cioguard's exit hooks deliver for — SIGTERM with no handler of the app's, uvicorn
re-raising its signal, ``multiprocessing`` and billiard children leaving through ``os._exit`` —
never run it, so the spans of the very calls just delivered were lost. After its exit flush,
:func:`cioguard.exits.exit_flush` calls::

    export_pending(runtime)    # force_flush of the tracer and meter providers in use, bounded

Never raises; each provider gets at most :data:`EXPORT_SECONDS`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cioguard.instrumentation.runtime import Runtime

logger = logging.getLogger("cioguard")

__all__ = ["EXPORT_SECONDS", "export_pending"]

#: The most one provider's ``force_flush`` may take (the process is leaving: a collector that
#: does not answer must not hold the exit up for long).
EXPORT_SECONDS = 2.0


def export_pending(runtime: Runtime, seconds: float = EXPORT_SECONDS) -> None:
    """``force_flush`` the tracer and meter providers the instrumentation uses (explicit or
    global), each bounded by ``seconds``. Never raises."""
    try:
        providers = _providers(runtime)
    except Exception:
        return
    for provider in providers:
        force_flush = getattr(provider, "force_flush", None)
        if callable(force_flush):  # SDK providers have it; the API's no-op/proxy ones do not
            with contextlib.suppress(Exception):
                force_flush(int(seconds * 1000))


def _providers(runtime: Runtime) -> list[Any]:
    from opentelemetry import metrics, trace

    found: list[Any] = []
    options = runtime.options
    for provider in (
        options.tracer_provider,
        trace.get_tracer_provider(),
        options.meter_provider,
        metrics.get_meter_provider(),
    ):
        if provider is not None and all(provider is not seen for seen in found):
            found.append(provider)
    return found
