"""How long the delivery queue has stayed nearly full, as the sender sees every change of level::

    watch = FillWatch(capacity=10_000)          # nearly full: 80 % of it
    watch.observe(size, now)                    # sender, after each intake and each answered request
    watch.held(now)                             # any thread: seconds nearly full so far (0.0: not)

Under overload the level is a sawtooth: each answered batch takes it a step down (a batch is at most
a quarter of the queue), callers fill it up again. A dip shorter than ``RELAX_SECONDS`` does not end a
stretch; a level that stays below for that long does, and so does one under half the queue (drained:
bursts of calls with quiet moments between them are not a queue staying full). CIO011 (the queue
staying nearly full) reads :meth:`FillWatch.held`.
"""

from __future__ import annotations

#: The fraction of the capacity that is "nearly full".
NEARLY_FULL = 0.8
#: How long the level must stay below it before a stretch ends.
RELAX_SECONDS = 3.0


class FillWatch:
    __slots__ = ("_drained", "_high_since", "_low_since", "level")

    def __init__(self, capacity: int, fill: float = NEARLY_FULL) -> None:
        self.level = max(1, int(capacity * fill))
        self._drained = capacity // 2
        self._high_since: float | None = None
        self._low_since: float | None = None

    def observe(self, size: int, now: float) -> None:
        """The queue holds ``size`` operations now (the engine's lock is held: one writer)."""
        if size < self._drained:
            self._high_since = self._low_since = None
        elif size >= self.level:
            low = self._low_since
            if self._high_since is None or (low is not None and now - low >= RELAX_SECONDS):
                self._high_since = now
            self._low_since = None
        elif self._low_since is None:
            self._low_since = now

    def held(self, now: float) -> float:
        """Seconds the queue has been nearly full, dips shorter than ``RELAX_SECONDS`` included;
        0.0 when it is not (lock-free: two reads, at worst one observation old)."""
        high, low = self._high_since, self._low_since
        if high is None or (low is not None and now - low >= RELAX_SECONDS):
            return 0.0
        return max(0.0, now - high)
