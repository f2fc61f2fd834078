"""Pure retry and outage policy: what a response means, how long to wait, when to give up.

::

    from cioguard.delivery.policy import EndpointHealth, classify, backoff_delay, expired

    classify(503, None)                       # "transient"  (408/429/5xx, timeouts, resets, refused)
    classify(429, None)                       # "throttled"  (waits Retry-After; never an attempt)
    classify(400, None)                       # "final"      (other 4xx: rejected for good)
    health = EndpointHealth(base=0.5, cap=30.0, rng=random.Random(1))
    health.permit(now)                        # (may send now?, seconds to wait otherwise)

Nothing here does I/O, sleeps or reads a clock: times are passed in and the random source is
injected, so every rule is unit-tested without sleeping.

**Outage mode.** After :data:`OUTAGE_AFTER` consecutive transient failures (no success between
them) an endpoint goes quiet: one probe request at a time, the next one after a full-jitter
backoff capped at ``cap``; every other batch of that endpoint waits instead of spending attempts.
The first success ends the outage and everything waiting drains at once.
"""

from __future__ import annotations

import email.utils
import random as _random
import time
from collections.abc import Mapping
from typing import Literal

from cioguard.delivery.wire import PartialFailure, endpoint_name, group_methods, join_v2

__all__ = [
    "OUTAGE_AFTER",
    "RETRYABLE_STATUS",
    "EndpointHealth",
    "PartialFailure",
    "Verdict",
    "backoff_delay",
    "classify",
    "endpoint_name",
    "expired",
    "group_methods",
    "join_v2",
    "outage_cause",
    "parse_retry_after",
    "retry_reason",
]

#: Status codes worth another attempt; everything else non-2xx is final.
RETRYABLE_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))
#: Consecutive transient failures that put an endpoint into outage mode.
OUTAGE_AFTER = 5

Verdict = Literal["ok", "transient", "throttled", "final"]


def classify(status: int | None, error_kind: str | None) -> Verdict:
    """What one attempt's result means. ``status`` is None when no response arrived."""
    if status is None:
        return "transient"  # timeout, reset, refused connection
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "throttled"
    if status in RETRYABLE_STATUS:
        return "transient"
    return "final"


def expired(age: float, attempts: int, patience: float, max_retries: int | None) -> bool:
    """True when an operation ``age`` seconds old after ``attempts`` failed attempts (429s not
    counted) must be given up: older than ``patience``, or past the optional ``max_retries``."""
    return age >= patience or (max_retries is not None and attempts > max_retries)


def backoff_delay(attempt: int, base: float, cap: float, rng: _random.Random) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**attempt)]`` (``attempt`` counts from 0)."""
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(headers: Mapping[str, str], maximum: float, now: float | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP date), clamped to
    ``[0, maximum]``; ``None`` when absent or unparseable (a hostile header cannot park us)."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), maximum)


def retry_reason(status: int | None, error_kind: str | None) -> str:
    """The ``retry`` metric reason: status_429|status_5xx|status_408|timeout|connection."""
    if status is None:
        return "timeout" if error_kind == "timeout" else "connection"  # (tls is a connection)
    if status == 429:
        return "status_429"
    if status == 408:
        return "status_408"
    return "status_5xx"


def outage_cause(status: int | None, error_kind: str | None, cause: str) -> tuple[str, str]:
    """(what failed, how to fix it) for the warning logged when an endpoint enters outage mode."""
    if status is not None:
        return f"HTTP {status}", "Customer.io is failing; delivery resumes by itself when it recovers"
    if error_kind == "tls":
        return cause or "TLS error", (
            "trust the server's CA (REQUESTS_CA_BUNDLE or the system store) and check for a "
            "TLS-intercepting proxy; track_url/api_url must be the https:// address"
        )
    if error_kind == "timeout":
        return "timeout", "check the network path and proxy (HTTPS_PROXY) to Customer.io"
    return cause or "connection failed", (
        "check track_url/api_url (and region), DNS, firewall and proxy settings (HTTPS_PROXY)"
    )


class EndpointHealth:
    """Outage state of one endpoint (base URL). Not thread-safe: the engine calls it under its lock.

    ``permit(now)`` says whether a request may start; ``started(now)`` must follow when one does,
    and exactly one of ``succeeded``/``failed``/``neutral`` when it ends (with the token that
    ``started`` returned). Invariant: in outage at most one request (the probe) is in flight.
    """

    __slots__ = ("_base", "_cap", "_rng", "failures", "next_probe_at", "outage", "probe_out", "probes")

    def __init__(self, base: float, cap: float, rng: _random.Random) -> None:
        self._base = base
        self._cap = cap
        self._rng = rng
        #: Transient failures since the last success.
        self.failures = 0
        self.outage = False
        self.probe_out = False
        #: Failed probes in this outage (the backoff exponent).
        self.probes = 0
        self.next_probe_at = 0.0

    def permit(self, now: float) -> tuple[bool, float | None]:
        """(True, None) when a request may start now; else (False, seconds to wait or None when
        only the end of the probe in flight can change the answer)."""
        if not self.outage:
            return True, None
        if self.probe_out:
            return False, None
        if now >= self.next_probe_at:
            return True, None
        return False, self.next_probe_at - now

    def started(self, now: float) -> bool:
        """A request starts; True when it is the outage probe."""
        if self.outage:
            self.probe_out = True
            return True
        return False

    def succeeded(self) -> bool:
        """A response arrived that proves the endpoint is up; True when an outage just ended."""
        ended = self.outage
        self.failures = 0
        self.outage = False
        self.probe_out = False
        self.probes = 0
        return ended

    def failed(self, now: float, probe: bool) -> bool:
        """A transient failure; True when it started an outage."""
        self.failures += 1
        if self.outage:
            if probe:
                self.probe_out = False
                self.probes += 1
                self.next_probe_at = now + backoff_delay(self.probes, self._base, self._cap, self._rng)
            return False
        if self.failures >= OUTAGE_AFTER:
            self.outage = True
            self.probes = 0
            self.next_probe_at = now + backoff_delay(0, self._base, self._cap, self._rng)
            return True
        return False

    def neutral(self, probe: bool) -> None:
        """A 429 (the endpoint is alive but busy): no fault, and the probe slot is free again."""
        if probe:
            self.probe_out = False
