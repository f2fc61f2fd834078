"""What went wrong with a spool, told once: the log line, the metric, ``stats()`` and lost counts.

::

    health = SpoolHealth("/var/lib/app/cio.spool", recorder)
    health.fault("disk_full", exc)     # logged once per kind (path + fix), metric once per episode
    health.recovered()                 # the next successful write ends the episode
    health.lose("spool_error", 12)     # operations the spool could not keep
    health.take_losses()               # {"spool_error": 12}: read (and reset) by the engine
    health.report()                    # {"state": "disk_full", "errors": {...}, "lost": 12, ...}

A spool fault never raises into the application: every method here swallows its own errors.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from cioguard.delivery.spool_store import FIXES
from cioguard.telemetry.recorder import NullRecorder, Recorder

logger = logging.getLogger("cioguard.delivery")


class SpoolHealth:
    """Thread-safe fault state of one spool handle."""

    def __init__(self, path: str, recorder: Recorder | None = None) -> None:
        self.path = path
        self._recorder: Recorder = recorder or NullRecorder()
        self._lock = threading.Lock()
        #: The fault kind of the current episode, None while the spool works.
        self.state: str | None = None
        self.errors: dict[str, int] = {}
        self.lost = 0
        self._losses: dict[str, int] = {}
        self._logged: set[str] = set()

    def fault(self, kind: str, exc: BaseException | None = None, action: str = "") -> None:
        """Record a fault of ``kind``; the first of each kind is logged with the path and the fix."""
        with self._lock:
            new_episode = self.state != kind
            self.state = kind
            if new_episode:
                self.errors[kind] = self.errors.get(kind, 0) + 1
            first = kind not in self._logged
            self._logged.add(kind)
        if new_episode:
            with contextlib.suppress(Exception):  # a broken recorder must not break the spool
                self._recorder.spool_error(kind)
        if first:
            what = f"{type(exc).__name__}: {exc}" if exc is not None else kind
            logger.error(
                "cioguard: the durable spool %s failed (%s, %s)%s; operations stay in memory until it "
                "works again (what does not fit is dropped and counted as spool_error). Fix: %s",
                self.path,
                kind,
                what,
                f"; {action}" if action else "",
                FIXES.get(kind, FIXES["other"]),
            )

    def note(self, kind: str, action: str) -> None:
        """A fault already repaired (the spool keeps working): metric, errors and a log line once."""
        self.fault(kind, None, action)
        with self._lock:
            if self.state == kind:
                self.state = None

    def recovered(self) -> None:
        """A write succeeded: the current episode (if any) is over."""
        with self._lock:
            kind, self.state = self.state, None
        if kind is not None:
            logger.warning("cioguard: the durable spool %s works again (after %s)", self.path, kind)

    def lose(self, reason: str, count: int) -> None:
        """``count`` accepted operations the spool can no longer deliver (``expired`` or ``spool_error``)."""
        if count <= 0:
            return
        with self._lock:
            self._losses[reason] = self._losses.get(reason, 0) + count
            self.lost += count

    def take_losses(self) -> dict[str, int]:
        """Losses since the last call, by drop reason (the engine counts them as drops)."""
        with self._lock:
            out, self._losses = self._losses, {}
        return out

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state or "ok", "errors": dict(self.errors), "lost": self.lost}
