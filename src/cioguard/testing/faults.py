"""Fault injection for the emulator: scripted faults, seeded chaos and a token-bucket rate limit.

Each request asks :meth:`FaultPlan.pick` for at most one fault, in this order: the first scripted
rule whose path prefix matches (consuming one of its ``n``), then the rate limit, then chaos. Kinds:

* ``status``: answer ``status`` (e.g. 429 with ``Retry-After``, 500, 503) instead of the real reply;
* ``stall``: hold the connection ``seconds`` (interrupted by ``stop()``), see ``when`` below;
* ``reset``: abort the TCP connection with RST (``SO_LINGER`` 0 then close), no response.

``when="before"``: the request is not applied (a stall then drops the connection). ``when="after"``:
the state change is applied, then the response is replaced by the fault (a stall then sends the real
response late) — the case that makes clients retry and create duplicates. All randomness comes from
``random.Random(seed)`` and all timing from the injected clock, so runs are reproducible.
"""

from __future__ import annotations

import math
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

WHEN = ("before", "after")


@dataclass(frozen=True)
class Fault:
    """One fault to inject into one request."""

    kind: str  # "status" | "stall" | "reset"
    when: str = "before"
    status: int = 0
    retry_after: float | None = None
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """The counter name: ``status_429``, ``stall``, ``reset`` or ``rate_limited``."""
        return f"status_{self.status}" if self.kind == "status" else self.kind


@dataclass
class _Rule:
    fault: Fault
    remaining: int
    path: str | None


@dataclass(frozen=True)
class Chaos:
    seed: int
    p_5xx: float = 0.0
    p_429: float = 0.0
    retry_after: float = 1
    p_reset: float = 0.0
    p_stall: float = 0.0
    stall_seconds: float = 2.0
    when: str = "before"


class TokenBucket:
    """``rps`` tokens per second up to ``burst``; a request that finds no token gets 429."""

    def __init__(self, rps: float, burst: float, now: float) -> None:
        self.rps, self.burst = rps, burst
        self.tokens, self.updated = burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rps)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> int:
        """Whole seconds until one token is available (at least 1, as HTTP wants integers)."""
        return max(1, math.ceil((1.0 - self.tokens) / self.rps))


def check_when(when: str) -> str:
    if when not in WHEN:
        raise ValueError(f"when must be 'before' or 'after', not {when!r}")
    return when


class FaultPlan:
    """The scripted rules, chaos settings and rate limit of one emulator (not thread-safe)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._rules: list[_Rule] = []
        self._chaos: Chaos | None = None
        self._rng = random.Random(0)
        self._bucket: TokenBucket | None = None
        self.injected: Counter[str] = Counter()

    def add(self, n: int, fault: Fault, path: str | None) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        check_when(fault.when)
        self._rules.append(_Rule(fault, n, path))

    def set_chaos(self, chaos: Chaos | None) -> None:
        if chaos is not None:
            check_when(chaos.when)
            total = chaos.p_5xx + chaos.p_429 + chaos.p_reset + chaos.p_stall
            if min(chaos.p_5xx, chaos.p_429, chaos.p_reset, chaos.p_stall) < 0 or total > 1:
                raise ValueError("chaos probabilities must be >= 0 and sum to at most 1")
            self._rng = random.Random(chaos.seed)
        self._chaos = chaos

    def set_rate_limit(self, rps: float | None, burst: float | None = None) -> None:
        if rps is None:
            self._bucket = None
            return
        if rps <= 0:
            raise ValueError("rps must be positive")
        self._bucket = TokenBucket(rps, max(1.0, burst if burst is not None else rps), self._clock())

    def clear(self) -> None:
        self._rules.clear()
        self._chaos = None
        self._bucket = None
        self.injected.clear()

    def pick(self, path: str, now: float) -> Fault | None:
        fault = self._scripted(path) or self._rate_limited(now) or self._chaotic()
        if fault is not None:
            self.injected["rate_limited" if fault.kind == "rate_limited" else fault.label] += 1
        return fault

    def _scripted(self, path: str) -> Fault | None:
        for rule in self._rules:
            if rule.remaining > 0 and (rule.path is None or path.startswith(rule.path)):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule.fault
        return None

    def _rate_limited(self, now: float) -> Fault | None:
        if self._bucket is None or self._bucket.take(now):
            return None
        return Fault("rate_limited", "before", 429, self._bucket.retry_after())

    def _chaotic(self) -> Fault | None:
        chaos = self._chaos
        if chaos is None:
            return None
        draw = self._rng.random()
        for probability, fault in (
            (chaos.p_reset, Fault("reset", chaos.when)),
            (chaos.p_stall, Fault("stall", chaos.when, seconds=chaos.stall_seconds)),
            (chaos.p_429, Fault("status", chaos.when, 429, chaos.retry_after)),
            (chaos.p_5xx, Fault("status", chaos.when, 500)),
        ):
            if draw < probability:
                if fault.status == 500 and draw >= probability / 2:
                    return Fault("status", chaos.when, 503)  # p_5xx is split evenly: 500 and 503
                return fault
            draw -= probability
        return None


class FaultControls:
    """The fault-injection methods of ``FakeCustomerIO`` (a mixin over its lock and plan)."""

    _lock: threading.Lock
    _faults: FaultPlan

    # -- faults -----------------------------------------------------------------------------------
    def fail_next(
        self,
        n: int,
        status: int = 500,
        retry_after: float | None = None,
        path: str | None = None,
        when: str = "before",
    ) -> None:
        """Answer the next ``n`` requests (under ``path`` prefix, if given) with ``status``."""
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        with self._lock:
            self._faults.add(n, Fault("status", when, status, retry_after), path)

    def stall_next(self, n: int, seconds: float, path: str | None = None, when: str = "before") -> None:
        """Hold the next ``n`` requests for ``seconds`` (see the faults module for ``when``)."""
        with self._lock:
            self._faults.add(n, Fault("stall", when, seconds=seconds), path)

    def reset_next(self, n: int, path: str | None = None, when: str = "before") -> None:
        """Abort the next ``n`` requests' connections with a TCP RST."""
        with self._lock:
            self._faults.add(n, Fault("reset", when), path)

    def set_chaos(
        self,
        seed: int | None,
        p_5xx: float = 0.0,
        p_429: float = 0.0,
        retry_after: float = 1,
        p_reset: float = 0.0,
        p_stall: float = 0.0,
        stall_seconds: float = 2.0,
        when: str = "before",
    ) -> None:
        """Random faults from ``random.Random(seed)``; ``set_chaos(None)`` turns chaos off."""
        chaos = (
            None
            if seed is None
            else Chaos(seed, p_5xx, p_429, retry_after, p_reset, p_stall, stall_seconds, when)
        )
        with self._lock:
            self._faults.set_chaos(chaos)

    def set_rate_limit(self, rps: float | None, burst: float | None = None) -> None:
        """Token bucket (``burst`` defaults to ``rps``) on the injected clock; ``None`` disables."""
        with self._lock:
            self._faults.set_rate_limit(rps, burst)
