"""Thread-safe delivery counters behind ``engine.stats()``, and rate-limited drop logging.

Every lost operation is counted by reason and logged on logger ``cioguard.delivery`` at most
once per reason per minute (with the count since the last line), never per event and never
with the payload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("cioguard.delivery")

DROP_REASONS = ("queue_full", "shutdown", "rejected", "expired", "oversize", "spool_error")
LOG_EVERY = 60.0

_EXPLAIN = {
    "queue_full": "the delivery queue is full (max_queue_size)",
    "shutdown": "the engine was shut down or the exit deadline passed",
    "rejected": "Customer.io rejected them (4xx or a 207 entry error)",
    "expired": "still undelivered after delivery_timeout (or max_retries, if set)",
    "oversize": "oversize: over Customer.io's size limits or max_batch_bytes",
    "spool_error": "the durable spool failed and the memory queue could not hold them",
}


class Counters:
    """Monotonic totals; ``add`` is safe from any thread."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.values: dict[str, int] = {
            "accepted": 0,
            "delivered": 0,
            "retries": 0,
            "requests": 0,
            "rate_limited": 0,
            "errors": 0,
        }
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._unlogged: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._last_log: dict[str, float] = {}
        self._last_error_log = float("-inf")

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            self.values[name] = self.values.get(name, 0) + count

    def drop(self, reason: str, count: int = 1, detail: str = "") -> None:
        """Count ``count`` lost operations and log the reason at most once a minute."""
        if count <= 0:
            return
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            pending = self._unlogged.get(reason, 0) + count
            now = self._clock()
            last = self._last_log.get(reason)
            if last is not None and now - last < LOG_EVERY:
                self._unlogged[reason] = pending
                return
            self._last_log[reason] = now
            self._unlogged[reason] = 0
        extra = f" ({detail})" if detail else ""
        logger.warning(
            "cioguard dropped %d Customer.io operation(s): %s%s", pending, _EXPLAIN.get(reason, reason), extra
        )

    def log_unlogged(self) -> None:
        """Log every drop still waiting for its once-a-minute line (at shutdown, so none is silent)."""
        with self._lock:
            pending = {reason: n for reason, n in self._unlogged.items() if n}
            for reason in pending:
                self._unlogged[reason] = 0
        for reason, count in pending.items():
            logger.warning(
                "cioguard dropped %d Customer.io operation(s): %s", count, _EXPLAIN.get(reason, reason)
            )

    def error(self, where: str, exc: BaseException) -> None:
        """An unexpected exception inside the sender: counted, logged once a minute, swallowed."""
        with self._lock:
            self.values["errors"] += 1
            now = self._clock()
            if now - self._last_error_log < LOG_EVERY:
                return
            self._last_error_log = now
        logger.error("cioguard delivery: unexpected error in %s: %r", where, exc, exc_info=exc)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self.values)
            out["dropped"] = dict(self.dropped)
        return out
