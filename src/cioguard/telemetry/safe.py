"""``@never_raise``: recorder methods swallow (and log, rate-limited) their own failures.

A metrics backend must never break the code it measures: a full disk under
``PROMETHEUS_MULTIPROC_DIR``, an exporter bug or a bad value ends up in the ``cioguard.telemetry``
logger, at most once a minute per method, and the caller carries on::

    class MyRecorder:
        @never_raise
        def call(self, method: str, mode: str, seconds: float) -> None:
            ...
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

logger = logging.getLogger("cioguard.telemetry")

#: Seconds between two logged failures of the same method.
LOG_INTERVAL = 60.0
_last_logged: dict[str, float] = {}


def never_raise(func: Callable[P, None]) -> Callable[P, None]:
    """Wrap ``func`` so any exception is logged (rate-limited) instead of raised."""
    name = func.__qualname__

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            now = time.monotonic()
            if now - _last_logged.get(name, -LOG_INTERVAL) >= LOG_INTERVAL:
                _last_logged[name] = now
                logger.exception("cioguard: recording %s failed (suppressed)", name)

    return wrapper
