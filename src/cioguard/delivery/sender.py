"""Send a batch: one request per :meth:`BatchSender.attempt`, with rate limiting, 207 handling and
a CLIENT span per attempt.

A :class:`BatchSender` is shared by all sender threads. ``attempt(ops)`` makes exactly one request
(the transport never retries underneath) and says what it came to; the engine decides what next
(:mod:`cioguard.delivery.policy`). ``send(ops)`` is the self-contained retry loop the scale-out
worker uses: patience by time (``delivery_timeout``), 429s never counted as attempts.
Neither ever raises.
"""

from __future__ import annotations

import random as _random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.policy import (
    Verdict,
    backoff_delay,
    classify,
    expired,
    parse_retry_after,
    retry_reason,
)
from cioguard.delivery.ratelimit import TokenBucket
from cioguard.delivery.redirects import Exchange, Redirects
from cioguard.delivery.spans import SpanFactory, suppressed
from cioguard.delivery.transport import USER_AGENT, Transport, TransportError, TransportResponse
from cioguard.delivery.wire import REDIRECTS, PartialFailure, endpoint_name, join_v2
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import Recorder

_body = attrgetter("_body")
_pending = attrgetter("_pending")

#: ``on_response(endpoint, status)`` is called for every HTTP response (CIO001 watches 401).
ResponseHook = Callable[[Endpoint, int], None]


@dataclass
class Attempt:
    """What one request came to (see :func:`cioguard.delivery.policy.classify`)."""

    verdict: Verdict
    status: int | None
    error: str | None
    retry_after: float | None
    #: The request never started: the shutdown deadline passed first.
    stopped: bool = False
    #: Why no response arrived, in words (``certificate verify failed``, ``connection refused``).
    cause: str = ""
    name: str = "other"
    #: index → (reason, field) of entries a 2xx body rejected.
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)


@dataclass
class BatchResult:
    delivered: list[Operation] = field(default_factory=list)
    #: reason → operations (rejected, expired, shutdown)
    dropped: dict[str, list[Operation]] = field(default_factory=dict)


class BatchSender:
    """Turns a batch into HTTP attempts. ``deadline()`` returns the monotonic time after which
    nothing new may be started (set by shutdown/exit), or ``None``."""

    def __init__(
        self,
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
        self._config = config
        self._transport = transport
        self._recorder = recorder
        self._counters = counters
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._rng_lock = threading.Lock()
        self._deadline = deadline
        self._spans = SpanFactory(tracer) if tracer is not None else None
        self._on_response = on_response
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self._redirects = Redirects()
        self._last_rejection = ""

    def bucket(self, endpoint: Endpoint) -> TokenBucket:
        key = (endpoint.base_url, endpoint.auth_header)
        bucket = self._buckets.get(key)
        if bucket is None:
            with self._buckets_lock:
                bucket = self._buckets.setdefault(
                    key, TokenBucket(self._config.rate_limit, self._config.rate_burst, self._clock())
                )
        return bucket

    def _time_left(self) -> float | None:
        deadline = self._deadline()
        return None if deadline is None else deadline - self._clock()

    def paused(self, key: tuple[str, str], now: float) -> float:
        """Seconds the 429 pause of the endpoint ``key`` (``(base_url, auth_header)``) has left."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.paused_until - now

    def pausing(self, now: float) -> bool:
        """Whether an endpoint waits out a 429 now (its operations cannot drain meanwhile)."""
        return any(bucket.paused_until > now for bucket in list(self._buckets.values()))

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless that passes the deadline; False means give up now."""
        left = self._time_left()
        if left is not None and seconds >= left:
            return False
        if seconds > 0:
            self._sleep(seconds)
        return True

    def attempt(self, ops: Sequence[Operation], attempt: int = 0) -> Attempt:
        """One HTTP request for ``ops`` (after the rate limiter allows it); never raises.

        A 429 pauses the endpoint's bucket for ``Retry-After`` (or ``rate_limit_pause``); a 2xx
        body listing ``errors`` (207, or any 2xx) rejects only the listed entries."""
        first = ops[0]
        endpoint = first.endpoint
        if first.route == "v2":
            method, path = "POST", "/api/v2/batch"
            body = join_v2(bodies(ops))
        else:
            method, path, body = first.http_method, first.path, first.body
        name = endpoint_name(method, path)
        headers = {
            "Authorization": endpoint.auth_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        bucket = self.bucket(endpoint)
        # Rate limit (and 429 pause) shared by every sender thread of this endpoint.
        while (wait := bucket.reserve(self._clock())) > 0:
            if not self._wait(wait):
                return Attempt("transient", None, "deadline", None, stopped=True)
        left = self._time_left()
        if left is not None and left <= 0:
            return Attempt("transient", None, "deadline", None, stopped=True)
        self._recorder.batch_operations(len(ops))
        timeout = self._config.request_timeout if left is None else min(self._config.request_timeout, left)
        url = endpoint.base_url.rstrip("/") + path
        response, error, cause = self._attempt(method, url, path, body, headers, timeout, ops, attempt, name)
        if response is not None and response.status in REDIRECTS:

            def resend(target: str) -> Exchange:
                return self._attempt(method, target, path, body, headers, timeout, ops, attempt, name)

            response, error, cause, why = self._redirects.follow(response, url, resend)
            if why:
                self._last_rejection = why
        status = response.status if response is not None else None
        if status is not None and self._on_response is not None:
            try:
                self._on_response(endpoint, status)
            except Exception as exc:
                self._counters.error("on_response hook", exc)
        verdict = classify(status, error)
        retry_after = None
        if response is not None and verdict != "ok":
            retry_after = parse_retry_after(response.headers, self._config.retry_after_max)
            if retry_after is not None:
                self._redirects.long_wait(name, status, retry_after, self._clock())
        result = Attempt(verdict, status, error, retry_after, name=name, cause=cause)
        if verdict == "ok" and response is not None and first.route == "v2" and b'"errors"' in response.body:
            result.rejected = PartialFailure(response.body, len(ops)).rejected
            if result.rejected:
                reason, fieldname = next(iter(result.rejected.values()))
                self._last_rejection = f"first error: reason={reason!r} field={fieldname!r}"
            elif status == 207:  # "errors" is there, but names no entry of this request
                self._redirects.unreadable_partial(name, len(ops), self._clock())
        elif verdict == "ok" and status == 207:
            self._redirects.unreadable_partial(name, len(ops), self._clock())
        elif verdict == "throttled":
            self._counters.add("rate_limited")
            self._recorder.rate_limited(name)
            pause = self._config.rate_limit_pause if retry_after is None else retry_after
            bucket.pause_until(self._clock() + pause)
        elif verdict == "final":
            logger.debug("cioguard: %s answered %s; %d operation(s) rejected", name, status, len(ops))
            if status not in REDIRECTS:  # (a redirect not followed said why already)
                self._last_rejection = f"HTTP {status}"
        return result

    def send(self, ops: Sequence[Operation]) -> BatchResult:
        """Deliver one batch with retries (used by the scale-out worker): until delivered,
        rejected, older than ``delivery_timeout`` (or past ``max_retries``), or the deadline."""
        result = BatchResult()
        started = self._clock()
        failures = 0  # failed attempts, 429s not counted
        resends = 0  # requests made again, 429s included (the span's resend count)
        while True:
            outcome = self.attempt(ops, resends)
            resends += 1
            if outcome.stopped:
                result.dropped["shutdown"] = list(ops)
                return result
            if outcome.verdict == "ok":
                result.delivered = [op for i, op in enumerate(ops) if i not in outcome.rejected]
                if outcome.rejected:
                    result.dropped["rejected"] = [ops[i] for i in sorted(outcome.rejected)]
                return result
            if outcome.verdict == "final":
                result.dropped["rejected"] = list(ops)
                return result
            if outcome.verdict != "throttled":  # a 429 is flow control: the bucket waits it out
                failures += 1
            config = self._config
            if expired(self._clock() - started, failures, config.delivery_timeout, config.max_retries):
                result.dropped["expired"] = list(ops)
                return result
            self._counters.add("retries")
            self._recorder.retry(outcome.name, retry_reason(outcome.status, outcome.error))
            if outcome.verdict == "throttled":
                continue
            with self._rng_lock:
                delay = backoff_delay(failures - 1, config.retry_base, config.retry_cap, self._rng)
            if outcome.retry_after is not None:
                delay = max(delay, outcome.retry_after)
            if not self._wait(delay):
                result.dropped["shutdown"] = list(ops)
                return result

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        ops: Sequence[Operation],
        attempt: int,
        name: str,
    ) -> tuple[TransportResponse | None, str | None, str]:
        span = None
        if self._spans is not None:
            try:
                span = self._spans.start(method, url, path, ops, attempt)
            except Exception as exc:  # a span processor's bug must not stop delivery
                self._counters.error("span start", exc)
        started = self._clock()
        response: TransportResponse | None = None
        error: str | None = None
        cause = ""
        try:
            with suppressed():  # no second span from an HTTP-library instrumentation
                response = self._transport.send(method, url, body, headers, timeout)
        except TransportError as exc:
            error, cause = exc.kind, str(exc)
        except Exception as exc:  # a broken transport must not kill the lane
            self._counters.error("transport", exc)
            error, cause = "connection", type(exc).__name__
        self._counters.add("requests")
        if response is not None:
            self._recorder.request(name, str(response.status), self._clock() - started)
        else:
            self._recorder.request(name, "error", self._clock() - started, error_type=error)
        if span is not None and self._spans is not None:
            try:
                self._spans.end(span, response.status if response else None, error)
            except Exception as exc:  # (the request was made: its answer still counts)
                self._counters.error("span end", exc)
        return response, error, cause

    @property
    def last_rejection(self) -> str:
        return self._last_rejection


def bodies(ops: Sequence[Operation]) -> list[bytes]:
    """The encoded entries of ``ops``: C-level reads once every operation is complete (the
    sender completes them at intake; a batch holds up to 2 000, read in one short GIL stretch)."""
    if any(map(_pending, ops)):
        return [op.body for op in ops]  # (completes them, in order)
    return list(map(_body, ops))
