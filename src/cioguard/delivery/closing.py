"""Closing the engine's core: deliver within the deadline, then count or keep what is left.

::

    kept = close_core(core, timeout)   # None: closed already; else operations kept in the spool

Used by :meth:`cioguard.delivery.engine.DeliveryEngine.shutdown` (which also closes its own
transport once nothing is in flight). Later submits are refused with reason ``shutdown``.
"""

from __future__ import annotations

import threading
import time

from cioguard.delivery.counters import logger
from cioguard.delivery.dispatch import Core
from cioguard.delivery.sweeps import in_flight
from cioguard.delivery.sweeps import leftovers as left_behind

__all__ = ["close_core"]


def close_core(core: Core, timeout: float) -> int | None:
    """Close ``core``: wait up to ``timeout`` for its senders, then drop (reason ``shutdown``) or
    keep in the spool what is left; returns how many operations the spool keeps."""
    kept = 0
    end = time.monotonic() + max(0.0, timeout)
    with core.lock:
        if core.closed:
            return None
        core.closed = True
        core.sched.closing = True
        core.deadline = core.clock() + max(0.0, timeout)
        core.bell.ring(every=True)
        core.space.notify_all()
    current = threading.current_thread()
    if (core.sched.size or core.inbox) and not any(t.is_alive() for t in core.threads):
        core.wake()  # no sender ran yet: start one now, or (none can start) send on this thread
        if not core.threads:
            core.run()  # until nothing is queued or the deadline (closed: see Core._next)
    if current not in core.threads:  # never wait for (or join) ourselves
        with core.lock:
            # Until nothing is queued and every finished request has done its bookkeeping
            # (metrics, spool rows): ``unsettled`` operations left the scheduler already, and
            # closing the spool under them would leave their delivered rows behind.
            while (core.sched.size or core.inbox or core.unsettled) and any(
                t.is_alive() for t in core.threads
            ):
                left = end - time.monotonic()
                if left <= 0:
                    break
                core.bell.ring(every=True)
                core.space.wait(min(left, 0.05))
    with core.lock:
        core.intake(core.clock())
        leftovers = list(left_behind(core.sched))
        # Without a spool, requests still out at the deadline are counted now, as dropped: a
        # process that exits next never sees them end (a stalled endpoint). With a spool their
        # rows stay on disk until a request's end deletes them, so nothing is counted. Closed
        # from a sender (a hook), this thread's own request has its answer: they count at its end.
        flying = [] if core.link.on or current in core.threads else list(in_flight(core.sched))
        core.abandoned = bool(flying)
        core.stopped = True
        core.bell.ring(every=True)
        for mark in core.marks:
            mark.finish(False)
        core.marks = []
    core.recorder.queue_size(core.pending())  # (0 unless rows spilled to disk wait there)
    if flying:
        logger.warning(
            "cioguard: %d operation(s) still in flight at the shutdown deadline are counted as "
            "dropped (shutdown): their outcome is unknown (events carry an id, so Customer.io "
            "ignores a resend of one it received)",
            len(flying),
        )
    elif core.inflight:
        logger.warning(
            "cioguard: %d operation(s) still in flight at the shutdown deadline stay in the spool "
            "until their request ends",
            core.inflight,
        )
    ops = leftovers + flying
    if ops and not core.link.on:
        core.out.drop(ops, "shutdown")
    elif ops or core.spilled:
        lost = core.link.persist(ops)  # memory-only while the spool failed: counted, not "kept"
        if lost:
            core.out.drop(lost, "spool_error")
        kept = len(ops) - len(lost) + core.spilled
        logger.warning("cioguard: %d operation(s) kept in the spool for the next process", kept)
    core.counters.log_unlogged()  # drops held back by the once-a-minute log: none stays silent
    core.link.close(max(0.0, end - time.monotonic()))
    core.count_spool_losses()  # what the spool could not keep at close is counted too
    core.out.run_hooks()
    return kept
