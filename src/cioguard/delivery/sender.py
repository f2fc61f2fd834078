"""Send one batch with retries, rate limiting, 207 handling and a CLIENT span per attempt.

A :class:`BatchSender` is shared by all lanes. ``send(ops)`` blocks the calling lane until the
batch is finished (delivered, rejected, out of retries, or past the shutdown deadline) and
returns a :class:`BatchResult`; it never raises. Attempts = ``max_retries + 1`` exactly: the
transport does not retry underneath.
"""

from __future__ import annotations

import random as _random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.policy import (
    RETRYABLE_STATUS,
    PartialFailure,
    backoff_delay,
    endpoint_name,
    join_v2,
    parse_retry_after,
    retry_reason,
)
from cioguard.delivery.ratelimit import TokenBucket
from cioguard.delivery.spans import SpanFactory
from cioguard.delivery.transport import USER_AGENT, Transport, TransportError, TransportResponse
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import Recorder

#: ``on_response(endpoint, status)`` is called for every HTTP response (CIO001 watches 401).
ResponseHook = Callable[[Endpoint, int], None]

_SUPPRESS_KEYS = (
    otel_context._SUPPRESS_INSTRUMENTATION_KEY,
    otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
)


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

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless that passes the deadline; False means give up now."""
        left = self._time_left()
        if left is not None and seconds >= left:
            return False
        if seconds > 0:
            self._sleep(seconds)
        return True

    def send(self, ops: Sequence[Operation]) -> BatchResult:
        first = ops[0]
        endpoint = first.endpoint
        if first.route == "v2":
            method, path = "POST", "/api/v2/batch"
            body = join_v2([op.body for op in ops])
        else:
            method, path, body = first.http_method, first.path, first.body
        name = endpoint_name(method, path)
        url = endpoint.base_url.rstrip("/") + path
        headers = {
            "Authorization": endpoint.auth_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        bucket = self.bucket(endpoint)
        result = BatchResult()
        self._recorder.batch_operations(len(ops))
        attempt = 0  # attempts made so far (bounded by max_retries)
        faults = 0  # non-429 failures so far (the backoff exponent)
        pause = 0.0
        while True:
            # Rate limit (and 429 pause) shared by every lane of this endpoint.
            while (wait := bucket.reserve(self._clock())) > 0:
                if not self._wait(wait):
                    result.dropped["shutdown"] = list(ops)
                    return result
            left = self._time_left()
            if left is not None and left <= 0:
                result.dropped["shutdown"] = list(ops)
                return result
            timeout = (
                self._config.request_timeout if left is None else min(self._config.request_timeout, left)
            )
            response, error = self._attempt(method, url, path, body, headers, timeout, ops, attempt, name)
            status = response.status if response is not None else None
            if status is not None and self._on_response is not None:
                try:
                    self._on_response(endpoint, status)
                except Exception as exc:
                    self._counters.error("on_response hook", exc)
            if status is not None and 200 <= status < 300:
                if status == 207 and first.route == "v2" and response is not None:
                    self._partial(ops, response.body, result)
                else:
                    result.delivered = list(ops)
                return result
            if status is not None and status not in RETRYABLE_STATUS:
                logger.debug("cioguard: %s answered %d; %d operation(s) rejected", name, status, len(ops))
                result.dropped["rejected"] = list(ops)
                return result
            retry_after = None
            if response is not None:
                retry_after = parse_retry_after(response.headers, self._config.retry_after_max)
            if status == 429:
                self._counters.add("rate_limited")
                self._recorder.rate_limited(name)
                pause = self._config.rate_limit_pause if retry_after is None else retry_after
                bucket.pause_until(self._clock() + pause)
            if attempt >= self._config.max_retries:
                result.dropped["expired"] = list(ops)
                return result
            self._counters.add("retries")
            self._recorder.retry(name, retry_reason(status, error))
            if status == 429:
                # Flow control, not a fault: wait the pause the server asked for (the bucket is
                # paused for every lane too) without growing the exponential backoff.
                delay = pause
            else:
                with self._rng_lock:
                    delay = backoff_delay(faults, self._config.retry_base, self._config.retry_cap, self._rng)
                faults += 1
                if retry_after is not None:
                    delay = max(delay, retry_after)
            attempt += 1
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
    ) -> tuple[TransportResponse | None, str | None]:
        span = self._spans.start(method, url, path, ops, attempt) if self._spans is not None else None
        token = otel_context.attach(_suppressed())
        started = self._clock()
        response: TransportResponse | None = None
        error: str | None = None
        try:
            response = self._transport.send(method, url, body, headers, timeout)
        except TransportError as exc:
            error = exc.kind
        except Exception as exc:  # a broken transport must not kill the lane
            self._counters.error("transport", exc)
            error = "connection"
        finally:
            otel_context.detach(token)
        self._counters.add("requests")
        self._recorder.request(name, str(response.status) if response else "error", self._clock() - started)
        if span is not None and self._spans is not None:
            self._spans.end(span, response.status if response else None, error)
        return response, error

    def _partial(self, ops: Sequence[Operation], body: bytes, result: BatchResult) -> None:
        failure = PartialFailure(body, len(ops))
        rejected = [ops[i] for i in sorted(failure.rejected)]
        result.delivered = [op for i, op in enumerate(ops) if i not in failure.rejected]
        if rejected:
            reason, fieldname = next(iter(failure.rejected.values()))
            result.dropped["rejected"] = rejected
            logger.debug("cioguard: 207 rejected %d entries (first: %s %s)", len(rejected), reason, fieldname)
            self._last_rejection = f"first error: reason={reason!r} field={fieldname!r}"

    @property
    def last_rejection(self) -> str:
        return getattr(self, "_last_rejection", "")


def _suppressed() -> otel_context.Context:
    ctx = otel_context.get_current()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    return ctx
