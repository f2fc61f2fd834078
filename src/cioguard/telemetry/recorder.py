"""The one internal interface every part of cioguard reports measurements through.

The delivery engine, the instrumentation, the middleware and the webhook receiver call a
:class:`Recorder`; the telemetry package decides where the numbers go (Prometheus, OpenTelemetry
metrics, both, or nowhere). This module imports nothing else from cioguard.

Label values passed here must already be from bounded sets (method names, endpoint kinds,
status codes, reasons, pitfall codes): never ids, emails, URLs or user-typed event names.
Implementations must never raise into the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Recorder(Protocol):
    """Sink for every measurement named in the README's metrics table."""

    def call(self, method: str, mode: str, seconds: float) -> None:
        """A patched SDK call returned to the caller after ``seconds`` (calls_total + duration)."""

    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        """Many :meth:`call` measurements at once (the sender records a batch's callers together)."""

    def enqueued(self, method: str, count: int = 1) -> None:
        """Operations accepted onto the queue."""

    def delivered(self, method: str, count: int = 1) -> None:
        """Operations acknowledged by Customer.io (also stamps the last-delivery time)."""

    def dropped(self, reason: str, count: int = 1) -> None:
        """Operations lost; reason in queue_full|shutdown|rejected|expired|oversize|spool_error."""

    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        """One HTTP request finished. ``endpoint`` is a bounded name (``v2_batch``, ``v1_track``,
        ``v1_identify``, ``app_send_email`` …); ``status_code`` is the code as a string, or
        ``error`` when no response arrived; then ``error_type`` says why (timeout|connection|tls;
        omitted → other)."""

    def rate_limited(self, endpoint: str) -> None:
        """A 429 response."""

    def retry(self, endpoint: str, reason: str) -> None:
        """A retry was scheduled; reason in status_429|status_5xx|status_408|timeout|connection."""

    def queue_size(self, size: int) -> None:
        """Current number of operations waiting (queue + in flight, not yet acknowledged)."""

    def queue_capacity(self, capacity: int) -> None:
        """The configured ``max_queue_size``."""

    def delivery_lag(self, seconds: float) -> None:
        """Enqueue → acknowledged, per delivered operation."""

    def delivery_lags(self, seconds: Sequence[float]) -> None:
        """Many :meth:`delivery_lag` measurements at once."""

    def batch_operations(self, count: int) -> None:
        """Operations carried by one HTTP request."""

    def pitfall(self, code: str, count: int = 1) -> None:
        """A pitfall rule fired ``count`` times (counted even when the warning itself is filtered)."""

    def spool_operations(self, count: int) -> None:
        """Operations currently held in the durable spool."""

    def http_request_blocked(self, seconds: float) -> None:
        """Time one web request spent blocked in Customer.io calls."""

    def http_requests_blocked(self, seconds: Sequence[float]) -> None:
        """Many :meth:`http_request_blocked` measurements at once (the middleware tallies them)."""

    def webhook_event(self, metric: str) -> None:
        """A verified reporting-webhook event (``metric`` from Customer.io's bounded set)."""

    def webhook_rejected(self, reason: str) -> None:
        """A rejected webhook request (signature|stale|malformed|oversize|…)."""

    def endpoint_outage(self, endpoint: str, active: bool) -> None:
        """An endpoint entered (``active=True``) or left outage mode (one probe at a time)."""

    def fallback(self, method: str) -> None:
        """A call went through the blocking SDK because cioguard hit an internal error."""

    def spool_error(self, kind: str) -> None:
        """The durable spool failed; kind in disk_full|read_only|corrupt|deleted|locked|other."""


class NullRecorder:
    """Records nothing: the default until telemetry is configured, and for tests."""

    def call(self, method: str, mode: str, seconds: float) -> None:
        pass

    def calls(self, method: str, mode: str, durations: Sequence[float]) -> None:
        pass

    def enqueued(self, method: str, count: int = 1) -> None:
        pass

    def delivered(self, method: str, count: int = 1) -> None:
        pass

    def dropped(self, reason: str, count: int = 1) -> None:
        pass

    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        pass

    def rate_limited(self, endpoint: str) -> None:
        pass

    def retry(self, endpoint: str, reason: str) -> None:
        pass

    def queue_size(self, size: int) -> None:
        pass

    def queue_capacity(self, capacity: int) -> None:
        pass

    def delivery_lag(self, seconds: float) -> None:
        pass

    def delivery_lags(self, seconds: Sequence[float]) -> None:
        pass

    def batch_operations(self, count: int) -> None:
        pass

    def pitfall(self, code: str, count: int = 1) -> None:
        pass

    def spool_operations(self, count: int) -> None:
        pass

    def http_request_blocked(self, seconds: float) -> None:
        pass

    def http_requests_blocked(self, seconds: Sequence[float]) -> None:
        # One by one, so a subclass that overrides only http_request_blocked sees every value.
        for value in seconds:
            self.http_request_blocked(value)

    def webhook_event(self, metric: str) -> None:
        pass

    def webhook_rejected(self, reason: str) -> None:
        pass

    def endpoint_outage(self, endpoint: str, active: bool) -> None:
        pass

    def fallback(self, method: str) -> None:
        pass

    def spool_error(self, kind: str) -> None:
        pass


_current: Recorder = NullRecorder()


def get_recorder() -> Recorder:
    """The process-wide recorder (a :class:`NullRecorder` until telemetry is configured)."""
    return _current


def set_recorder(recorder: Recorder) -> None:
    """Replace the process-wide recorder (called by ``cioguard.instrument``)."""
    global _current
    _current = recorder
