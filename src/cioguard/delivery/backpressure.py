"""Backpressure instead of loss: what a caller does when it finds the queue over its high water.

::

    if queued >= core.high_water:
        backpressure(core, queued)   # a GIL hand-off, or a 1-50 ms pause near full

Called by :class:`cioguard.delivery.engine.DeliveryEngine`'s submit paths (lock-free, on the
caller's thread); the pause and the event-loop test are module attributes so tests can replace them.
"""

from __future__ import annotations

import asyncio
import time

from cioguard.delivery.dispatch import Core
from cioguard.delivery.slices import press

__all__ = ["backpressure"]

#: ``time.sleep(0)`` releases the GIL: what a caller does when the queue is over its high water.
_pause = time.sleep
#: The asyncio loop running in this thread, or None (a C function: cheap enough per call).
_running_loop = asyncio._get_running_loop


def backpressure(core: Core, queued: int) -> None:
    """Backpressure instead of loss, for a caller that found the queue over half full.

    Callers outpacing the sender (a burst from many threads) hand it the GIL once per call while
    what waits to be sent is over half the queue, and pause 1 to 50 ms when the queue is nearly
    full (requests in flight included), so batches drain the queue before it overflows; the
    sender meanwhile works in longer stretches (:func:`cioguard.delivery.slices.press`). Never
    a pause on an event loop's thread: it would stall every coroutine, not one caller.
    """
    core.fill.observe(queued, core.clock())  # (CIO011: the sender may not look while lanes are busy)
    delay = core.brake(queued)
    if not delay and queued - core.inflight < core.high_water:
        return  # the rest is in flight: a hand-off would not bring its answers any sooner
    press()
    _pause(0.0 if delay and _running_loop() is not None else delay)
