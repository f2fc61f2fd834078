"""CIO011's queue-fill check, run on the caller every few hundred background calls::

    fill = QueueFill(pitfalls, engine, capacity)
    fill.check()      # a warning at the user's line (raises in "error" mode) when the queue has
                      # stayed nearly full

The local engine watches its own level at every change (:mod:`cioguard.delivery.fill`): under
overload the level is a sawtooth, and calls come in bursts with idle gaps, so samples taken with
calls would both miss a full queue and see one that was not. Other senders (Redis) are sampled.
"""

from __future__ import annotations

from typing import Any

from cioguard.instrumentation.stack import user_stacklevel
from cioguard.pitfalls import PitfallEngine


class QueueFill:
    def __init__(self, pitfalls: PitfallEngine, engine: Any, capacity: int) -> None:
        self._pitfalls = pitfalls
        self._engine = engine
        self._capacity = capacity

    def check(self) -> None:
        watch = getattr(self._engine, "nearly_full_for", None)
        if callable(watch):
            fill, held = watch()
            findings = self._pitfalls.check_queue_held(fill, held)
        else:
            findings = self._pitfalls.check_queue(self._engine.queued(), self._capacity)
        if findings:
            self._pitfalls.emit(findings, stacklevel=user_stacklevel())
