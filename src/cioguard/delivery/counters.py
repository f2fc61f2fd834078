"""Thread-safe delivery counters behind ``engine.stats()``, and rate-limited drop logging.

Every lost operation is counted by reason and logged on logger ``cioguard.delivery`` at most
once per reason per minute (with the count since the last line), never per event and never
with the payload. Drops held back by that limit are logged when their minute is up (a timer
thread), or at shutdown, whichever comes first: none stays silent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from cioguard.threads import daemon_thread

logger = logging.getLogger("cioguard.delivery")

DROP_REASONS = ("queue_full", "shutdown", "rejected", "expired", "oversize", "spool_error")
LOG_EVERY = 60.0

_EXPLAIN = {
    "queue_full": "the delivery queue is full (max_queue_size)",
    "shutdown": (
        "the engine was shut down or the exit deadline passed (calls made after that are dropped"
        " too, each counted in stats() and customerio_events_dropped_total)"
    ),
    "rejected": "Customer.io rejected them (a 4xx, a redirect not followed, or a 207 entry error)",
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
        self._details: dict[str, str] = {}
        self._last_log: dict[str, float] = {}
        self._last_error_log = float("-inf")
        self._timer: threading.Thread | None = None  # logs held-back drops when their minute is up

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
                if detail:
                    self._details[reason] = detail
                self._log_later(LOG_EVERY - (now - last))
                return
            self._last_log[reason] = now
            self._unlogged[reason] = 0
            self._details.pop(reason, None)
        _log_drop(reason, pending, detail)

    def log_unlogged(self) -> None:
        """Log every drop still waiting for its once-a-minute line (at shutdown, so none is silent)."""
        self._log_held(due_only=False)

    def _log_later(self, delay: float) -> None:
        """Start the timer that logs held-back drops in ``delay`` seconds (lock held; one at a time)."""
        timer = self._timer
        if timer is not None and timer.is_alive():  # (a forked child has no such thread: not alive)
            return
        self._timer = daemon_thread(self._held_loop, "cioguard-drop-log", (delay,))
        self._timer.start()

    def _held_loop(self, delay: float) -> None:
        wait = threading.Event().wait
        while True:
            wait(delay)
            self._log_held(due_only=True)
            with self._lock:  # the decision to stop is taken under the lock drop() holds
                next_due = self._next_due()
                if next_due is None:
                    self._timer = None
                    return
                delay = next_due

    def _next_due(self) -> float | None:
        """Seconds until the next held-back drop is due (lock held); None when none is held."""
        now = self._clock()
        last = self._last_log
        due = [LOG_EVERY - (now - last.get(r, float("-inf"))) for r, n in self._unlogged.items() if n]
        return max(0.01, min(due)) if due else None

    def _log_held(self, due_only: bool) -> None:
        """Log held-back drops: those whose minute is up, or all of them."""
        with self._lock:
            now = self._clock()
            lines: list[tuple[str, int, str]] = []
            for reason, count in self._unlogged.items():
                if not count:
                    continue
                if due_only and now - self._last_log.get(reason, float("-inf")) < LOG_EVERY:
                    continue
                self._unlogged[reason] = 0
                self._last_log[reason] = now
                lines.append((reason, count, self._details.pop(reason, "")))
        for reason, count, detail in lines:
            _log_drop(reason, count, detail)

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


def _log_drop(reason: str, count: int, detail: str) -> None:
    extra = f" ({detail})" if detail else ""
    logger.warning(
        "cioguard dropped %d Customer.io operation(s): %s%s", count, _EXPLAIN.get(reason, reason), extra
    )
