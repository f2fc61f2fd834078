"""One rate limit per Customer.io workspace across every worker, and the shared 429 pause.

:class:`RedisTokenBucket` has the interface of :class:`cioguard.delivery.ratelimit.TokenBucket`
(``reserve(now) -> wait``, ``pause_until(t)``), so the in-process
:class:`~cioguard.delivery.sender.BatchSender` uses it unchanged: :class:`RedisBatchSender` only
overrides ``bucket(endpoint)``. Retries, 207 handling and ``Retry-After`` stay the sender's.

Why a 25-line Lua script and not ``pyrate-limiter``'s Redis bucket: the script is one atomic
round trip that also checks the 429 pause key, it reads the clock of the Redis server (workers on
hosts with skewed clocks still share one timeline), it keeps the exact refill semantics of the
in-process bucket (``rate`` tokens/s, at most ``burst`` stored) and adds no dependency beyond
``redis``. ``pyrate-limiter`` models fixed windows of request counts, needs its own clock source
for distributed use, and has no notion of a pause.

Keys: ``{prefix}:rate:{endpoint id}`` (hash: tokens, stamp) and ``{prefix}:pause:{endpoint id}``
(set with ``PX`` = the ``Retry-After`` of a 429; every worker waits while it exists). The endpoint
id is a CRC of base URL + credentials, never the key itself. When Redis cannot be reached the
bucket falls back to the local in-process limit, so a worker keeps its own rate (not the global
one) until Redis is back.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

import redis

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.ratelimit import TokenBucket
from cioguard.delivery.sender import BatchSender, ResponseHook
from cioguard.delivery.transport import Transport
from cioguard.operations.model import Endpoint
from cioguard.scaleout.codec import Keys, endpoint_id
from cioguard.telemetry.recorder import Recorder

# KEYS[1] bucket hash, KEYS[2] pause key; ARGV rate (tokens/s), burst.
# Returns 0 when a token was taken, else the milliseconds to wait before asking again.
_RESERVE = """
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return pause end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
if now > stamp then tokens = math.min(burst, tokens + (now - stamp) * rate / 1000000) end
if now > stamp then stamp = now end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'stamp', string.format('%.0f', stamp))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""
# KEYS[1] pause key, KEYS[2] bucket hash; ARGV pause milliseconds. Never shortens a pause, and
# resumes gently: at most one stored token once the pause ends.
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
local tokens = tonumber(redis.call('HGET', KEYS[2], 'tokens'))
if tokens and tokens > 1 then redis.call('HSET', KEYS[2], 'tokens', '1') end
return 1
"""


class RedisTokenBucket(TokenBucket):
    """A :class:`TokenBucket` whose state lives in Redis; local fallback when Redis fails."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        endpoint: Endpoint,
        rate: float,
        burst: int,
        clock: Callable[[], float],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(rate, burst, clock())
        self._client = client
        ident = endpoint_id(endpoint)
        self._keys = [keys.bucket(ident), keys.pause(ident)]
        self._args = [repr(float(rate)), str(int(burst))]
        self._clock = clock
        self._on_error = on_error
        self._reserve = client.register_script(_RESERVE)
        self._pause = client.register_script(_PAUSE)

    def reserve(self, now: float) -> float:
        try:
            wait_ms = int(self._reserve(keys=self._keys, args=self._args))
        except redis.RedisError as exc:
            self._report(exc)
            return super().reserve(now)
        return wait_ms / 1000.0

    def pause_until(self, until: float) -> None:
        super().pause_until(until)  # also the local fallback's pause
        ms = int((until - self._clock()) * 1000)
        if ms <= 0:
            return
        try:
            self._pause(keys=[self._keys[1], self._keys[0]], args=[str(ms)])
        except redis.RedisError as exc:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)


class RedisBatchSender(BatchSender):
    """:class:`BatchSender` with the global Redis bucket per endpoint instead of a local one."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        config: DeliveryConfig,
        transport: Transport,
        recorder: Recorder,
        counters: Counters,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: _random.Random,
        deadline: Callable[[], float | None],
        tracer: Any = None,
        on_response: ResponseHook | None = None,
    ) -> None:
        super().__init__(
            config, transport, recorder, counters, clock, sleep, rng, deadline, tracer, on_response
        )
        self._client = client
        self._keys = keys
        self._global: dict[tuple[str, str], RedisTokenBucket] = {}

    def bucket(self, endpoint: Endpoint) -> TokenBucket:
        key = (endpoint.base_url, endpoint.auth_header)
        bucket = self._global.get(key)
        if bucket is None:
            with self._buckets_lock:
                bucket = self._global.get(key)
                if bucket is None:
                    bucket = RedisTokenBucket(
                        self._client,
                        self._keys,
                        endpoint,
                        self._config.rate_limit,
                        self._config.rate_burst,
                        self._clock,
                        lambda exc: self._counters.add("redis_errors"),
                    )
                    self._global[key] = bucket
        return bucket
