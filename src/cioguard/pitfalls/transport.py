"""Client and transport rules: CIO001 (keys, 401), CIO007 (blocking), CIO009 (clients), CIO011 (rate).

Pure ``*_finding`` functions plus two small bounded state holders: :class:`ClientBook` (hashes of the
credentials clients were built with) and :class:`RateWatch` (per-second call counts and how long the
queue has stayed nearly full). Key shapes come from secret scanners, not from Customer.io, so they
only ever warn.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict, deque

from cioguard.pitfalls.categories import Finding

_TRACK_KEY = re.compile(r"[A-Za-z0-9]{20}")
_APP_KEY = re.compile(r"[0-9a-fA-F]{32}")
_SALT = os.urandom(16)


def key_shape_finding(kind: str, key: object) -> Finding | None:
    """CIO001: a key shaped like the other API's key (Track: 20 chars; App: 32 hex or ``sa_live_``)."""
    if not isinstance(key, str):
        return None
    key = key.strip()
    if kind == "app" and _TRACK_KEY.fullmatch(key):
        return Finding(
            "CIO001",
            "CIO001 APIClient was given a key shaped like a Track API key (20 characters): the App API "
            "needs an App API key (Bearer) and answers 401 to Track keys. Use the key from Settings > "
            "API Credentials > App API Keys.",
        )
    if kind == "track" and (_APP_KEY.fullmatch(key) or key.startswith("sa_live_")):
        return Finding(
            "CIO001",
            "CIO001 CustomerIO (Track API) was given an api_key shaped like an App API key: the Track "
            "API needs the site id and Track API key (Basic auth) and answers 401 otherwise. Use the "
            "Track API key; send transactional messages with APIClient.",
        )
    return None


def unauthorized_finding(api: str) -> Finding:
    """CIO001: a 401 from the Track or App API."""
    if api == "app":
        return Finding(
            "CIO001",
            "CIO001 the App API answered 401: the key is not an App API key (a Track key does not work "
            "there) or belongs to the other region. Use an App API key and region=Regions.EU for EU "
            "workspaces.",
            "App API, HTTP 401",
        )
    return Finding(
        "CIO001",
        "CIO001 the Track API answered 401: wrong site id/API key pair, an App API key used for "
        "tracking, or an EU workspace called on the US region (the redirect drops credentials). "
        "Check the Track credentials and pass region=Regions.EU for EU workspaces.",
        "Track API, HTTP 401",
    )


def rounded_ms(seconds: float) -> str:
    """Milliseconds on a 1-2-5 scale (``"about 200 ms"``), for the finding's detail."""
    ms = seconds * 1000
    if ms < 1:
        return "under 1 ms"
    scale = 1.0
    while scale * 10 <= ms:
        scale *= 10
    step = min((1, 2, 5, 10), key=lambda s: abs(ms - s * scale))
    return f"about {step * scale:.0f} ms"


def blocking_finding(method: str, seconds: float, where: str, route: str | None = None) -> Finding:
    """CIO007: a call that blocked ``where`` (a web request or an asyncio event loop).

    The fix differs by API: App API sends (``send_email`` …) stay synchronous in cioguard's default
    background mode (callers use the ``delivery_id``), so "use background mode" would be no advice.
    """
    if method.startswith("send_"):
        fix = (
            "App API sends stay synchronous by default (they return the delivery_id): pass "
            "background_transactional=True if you do not read it, or send from a worker thread or "
            "task queue."
        )
    else:
        fix = (
            "Leave cioguard in its default background mode (not mode='blocking' or "
            "cioguard.synchronous()), or send from a worker thread or task queue."
        )
    return Finding(
        "CIO007",
        f"CIO007 {method}() blocked {where}: Customer.io calls add network latency (seconds, under "
        f"retries) to every response. {fix}",
        f"blocked {rounded_ms(seconds)}" + (f" in {route}" if route else ""),
    )


def repeated_client_finding(kind: str, count: int, in_request: bool = False) -> Finding:
    """CIO009: another client for credentials a client was already built with (``count`` so far)."""
    cls = "APIClient" if kind == "app" else "CustomerIO"
    return Finding(
        "CIO009",
        f"CIO009 another {cls} client was built for credentials that already have one: each client "
        "has its own connection pool and TLS handshakes, so building one per request or per item "
        "wastes both. Build it once and share it: a module-level client, an @lru_cache factory, or "
        "cioguard.track_client() / app_client().",
        f"client number {count} for these credentials"
        + (", built during a web request" if in_request else ""),
    )


class ClientBook:
    """How many clients were built per credential set, keyed by a salted hash (bounded)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def reset_after_fork(self) -> None:
        # A child counts its own clients: the parent's cached one (cioguard.track_client(), a
        # preloaded app) is dropped there, and the child's first client is not a second one.
        self._lock = threading.Lock()
        self._counts = OrderedDict()

    def built(self, kind: str, key: object, site_id: object) -> int:
        """Count one more client for these credentials; return the count so far."""
        digest = hashlib.blake2b(repr((kind, site_id, key)).encode(), digest_size=16, key=_SALT).digest()
        with self._lock:
            count = self._counts.get(digest, 0) + 1
            self._counts[digest] = count
            self._counts.move_to_end(digest)
            while len(self._counts) > self._max:
                self._counts.popitem(last=False)
        return count


def rate_limited_finding(api: str) -> Finding:
    """CIO011: a 429 answer."""
    which = "App" if api == "app" else "Track"
    return Finding(
        "CIO011",
        f"CIO011 the {which} API answered 429 Too Many Requests: calls are over Customer.io's rate "
        "limit and may be dropped or blocked. Spread bulk work out (cioguard's rate_limit option) or "
        "import in batches.",
        f"{which} API, HTTP 429",
    )


def call_rate_finding(rate: float, limit: float, seconds: int) -> Finding:
    return Finding(
        "CIO011",
        "CIO011 blocking-mode calls ran over the rate_limit option for several seconds: Customer.io "
        "answers 429 and may block the key. Use background mode (it rate-limits) or throttle the loop.",
        f"about {rate:.0f}/s for {seconds} s, rate_limit={limit:g}/s",
    )


def queue_full_finding(fill: float, seconds: float) -> Finding:
    return Finding(
        "CIO011",
        "CIO011 the delivery queue stayed nearly full: calls arrive faster than Customer.io accepts "
        "them, and new ones will be dropped when it fills. Lower the call rate, or raise "
        "max_queue_size / use a spool for bursts.",
        f"{fill:.0%} full for {seconds:.0f} s",
    )


class RateWatch:
    """Sustained-rate detection over whole seconds, and a nearly-full-queue timer.

    ``sustain`` consecutive complete seconds over the limit fire once; a new finding needs
    ``cooldown`` seconds. The same holds for the queue staying above ``queue_fill``.
    """

    def __init__(
        self, limit: float, sustain: int = 3, queue_fill: float = 0.8, cooldown: float = 60.0
    ) -> None:
        self.limit = limit
        self.sustain = sustain
        self.queue_fill = queue_fill
        self.cooldown = cooldown
        self._second = -1
        self._count = 0
        self._history: deque[tuple[int, int]] = deque(maxlen=sustain)
        self._last_rate_finding = float("-inf")
        self._high_since: float | None = None
        self._last_queue_finding = float("-inf")

    def call(self, now: float) -> Finding | None:
        second = int(now)
        if second == self._second:
            self._count += 1
            return None
        # A new second: close the previous one (counts may be off by a few under threads: harmless).
        if self._second >= 0:
            self._history.append((self._second, self._count))
        self._second, self._count = second, 1
        history = self._history
        if len(history) < self.sustain or now - self._last_rate_finding < self.cooldown:
            return None
        consecutive = history[-1][0] == second - 1 and history[0][0] == second - self.sustain
        if consecutive and all(count > self.limit for _, count in history):
            self._last_rate_finding = now
            rate = sum(count for _, count in history) / self.sustain
            return call_rate_finding(rate, self.limit, self.sustain)
        return None

    def queue_held(self, fill: float, held: float, now: float, sustain_seconds: float) -> Finding | None:
        """CIO011 from the engine's own watch: the queue has been nearly full for ``held`` seconds
        (it sees every change of level; dips shorter than a few seconds do not end a stretch)."""
        if held < sustain_seconds or now - self._last_queue_finding < self.cooldown:
            return None
        self._last_queue_finding = now
        return queue_full_finding(fill, held)

    def queue(self, size: int, capacity: int, now: float, sustain_seconds: float) -> Finding | None:
        if capacity <= 0 or size < self.queue_fill * capacity:
            self._high_since = None
            return None
        if self._high_since is None:
            self._high_since = now
            return None
        held = now - self._high_since
        if held < sustain_seconds or now - self._last_queue_finding < self.cooldown:
            return None
        self._last_queue_finding = now
        return queue_full_finding(size / capacity, held)
