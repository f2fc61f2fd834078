"""The one place where the delivery engine talks to the durable spool (``spool_path``).

::

    link = SpoolLink(Spool(path, sync, max_bytes), counters)   # or SpoolLink(None, counters)
    link.keep(op)            # caller, in submit: a row that lives until done() is called
    link.spill(op)           # queue full: the row waits on disk only (reload() brings it back)
    link.done(ops)           # delivered, finally rejected or expired: delete the rows
    link.reload(limit)       # spilled rows back to memory, oldest first

Invariant (issue 15.4): rows are deleted only through :meth:`SpoolLink.done`, and the engine calls
it only for operations that were delivered, rejected for good, or expired (older than
``spool_max_age``). A transient failure, an outage, shutdown and exit never delete a row: the
next process (or ``cioguard replay``) delivers it. Every spool error is counted and logged here;
none reaches the sender threads. The spool's owner (D2) may edit this module in small steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.spool import Spool
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import Recorder


def open_spool(
    config: DeliveryConfig,
    recorder: Recorder,
    on_claim: Callable[[int], None],
    resolve: Callable[[Endpoint], Endpoint] | None = None,
) -> Spool | None:
    """The spool ``config`` asks for (never raises: a bad file is reported by ``health()``).
    ``resolve`` maps a recovered row's endpoint to the one configured now (credentials kept)."""
    if config.spool_path is None:
        return None
    return Spool(
        config.spool_path,
        config.spool_sync,
        config.spool_max_bytes,
        max_age=config.spool_max_age,
        recorder=recorder,
        on_claim=on_claim,
        resolve=resolve,
    )


class SpoolLink:
    """Null-safe wrapper: with ``spool=None`` every method is a cheap no-op."""

    def __init__(self, spool: Spool | None, counters: Counters) -> None:
        self.spool = spool
        self._counters = counters

    @property
    def on(self) -> bool:
        return self.spool is not None

    def keep(self, op: Operation) -> bool:
        """Persist an operation that is also held in memory; False when the spool refused it."""
        if self.spool is None:
            return False
        try:
            return self.spool.add(op)
        except Exception as exc:
            self._counters.error("spool add", exc)
            return False

    def spill(self, op: Operation) -> bool:
        """Persist an operation that memory cannot hold; False when the spool refused it."""
        if self.spool is None:
            return False
        try:
            return self.spool.add(op, in_memory=False)
        except Exception as exc:
            self._counters.error("spool spill", exc)
            return False

    def done(self, ops: list[Operation]) -> None:
        """Delete the rows of operations that are finished for good (see the invariant above)."""
        if self.spool is None or not ops:
            return
        try:
            self.spool.ack(ops)
        except Exception as exc:  # the rows stay; the next process resends (deduped by id)
            self._counters.error("spool ack", exc)

    def reload(self, limit: int) -> list[Operation]:
        if self.spool is None:
            return []
        try:
            return self.spool.reload(limit)
        except Exception as exc:  # rows stay on disk for a later reload or the next process
            self._counters.error("spool reload", exc)
            return []

    def recover(self, limit: int) -> tuple[list[Operation], int]:
        """Claim dead owners' rows: (operations now in memory, how many more stay spilled)."""
        if self.spool is None:
            return [], 0
        try:
            return self.spool.recover(limit)
        except Exception as exc:
            self._counters.error("spool recover", exc)
            return [], 0

    def losses(self) -> dict[str, int]:
        """Operations the spool itself dropped since the last call (expired, spool_error)."""
        if self.spool is None:
            return {}
        try:
            return self.spool.take_losses()
        except Exception as exc:
            self._counters.error("spool losses", exc)
            return {}

    def health(self) -> dict[str, Any] | None:
        if self.spool is None:
            return None
        try:
            return self.spool.health()
        except Exception as exc:
            return {"state": "other", "error": repr(exc)}

    def failing(self) -> bool:
        """The spool is on but refuses operations because of a fault (disk full, read-only ...)."""
        return self.spool is not None and self.spool.failing()

    def persist(self, ops: list[Operation]) -> list[Operation]:
        """At shutdown: rows for operations still in memory; returns those that are not durable."""
        if self.spool is None:
            return list(ops)
        try:
            return self.spool.persist(ops)
        except Exception as exc:
            self._counters.error("spool persist", exc)
            return list(ops)

    def count(self) -> int:
        if self.spool is None:
            return 0
        try:
            return self.spool.count()
        except Exception:
            return 0

    def after_fork(self) -> None:
        if self.spool is not None:
            try:
                self.spool.after_fork()
            except Exception as exc:
                self._counters.error("spool after fork", exc)

    def close(self, timeout: float) -> None:
        """Commit what is queued and release ownership (rows stay for the next process)."""
        if self.spool is not None:
            try:
                self.spool.close(timeout)
            except Exception as exc:
                self._counters.error("spool close", exc)
