"""CIO011's queue-fill check, run on the caller every few hundred background calls::

    fill = QueueFill(pitfalls, engine, capacity)
    fill.check()      # a warning at the user's line (raises in "error" mode) when the queue stays
                      # nearly full, or overflowed since the last check

Calls dropped as ``queue_full`` since the last check mean the queue was full, whatever its level
when looked at (a sawtooth under overload: each answered batch takes a step down).
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
        #: ``queue_full`` drops seen at the last check (the local engine counts them lock-free).
        self._overflow_seen = 0

    def check(self) -> None:
        capacity = self._capacity
        size = self._engine.queued()
        overflowed = getattr(self._engine, "overflowed", None)
        if callable(overflowed):
            drops = overflowed()
            if drops > self._overflow_seen:
                size = max(size, capacity)
            self._overflow_seen = drops
        findings = self._pitfalls.check_queue(size, capacity)
        if findings:
            self._pitfalls.emit(findings, stacklevel=user_stacklevel())
