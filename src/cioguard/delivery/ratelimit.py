"""Per-endpoint token bucket shared by all lanes, plus the 429 pause.

``limiter.reserve(now)`` takes a token and returns 0.0, or returns how long to wait before
asking again (nothing is taken then). ``limiter.pause_until(t)`` blocks every lane of the
endpoint until ``t`` (a 429's ``Retry-After``). The clock is passed in, so tests need no sleep.
"""

from __future__ import annotations

import threading


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored; thread-safe."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now
        self._paused_until = now
        self._lock = threading.Lock()

    def reserve(self, now: float) -> float:
        """Take one token (returns 0.0) or return the seconds to wait first."""
        with self._lock:
            if now < self._paused_until:
                return self._paused_until - now
            elapsed = max(0.0, now - self._stamp)
            self._stamp = max(self._stamp, now)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
            # (the epsilon: a wait computed from the float deficit must always suffice)
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(0.0, self._tokens - 1.0)
                return 0.0
            return (1.0 - self._tokens) / self._rate

    def pause_until(self, until: float) -> None:
        """Hold every request to this endpoint until ``until`` (never shortens a pause)."""
        with self._lock:
            if until > self._paused_until:
                self._paused_until = until
                # Resume gently: no burst of stored tokens right after a 429.
                self._tokens = min(self._tokens, 1.0)

    @property
    def paused_until(self) -> float:
        return self._paused_until
