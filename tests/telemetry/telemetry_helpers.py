"""Shared helpers of the telemetry tests."""

from __future__ import annotations

from cioguard.telemetry import Recorder


def exercise(recorder: Recorder) -> None:
    """Call every Recorder method once with realistic values."""
    recorder.call("track", "background", 3e-6)
    recorder.enqueued("track", 2)
    recorder.delivered("track", 2)
    recorder.dropped("queue_full")
    recorder.request("v2_batch", "429", 0.012)
    recorder.rate_limited("v2_batch")
    recorder.retry("v2_batch", "status_429")
    recorder.queue_size(7)
    recorder.queue_capacity(10_000)
    recorder.delivery_lag(0.8)
    recorder.batch_operations(40)
    recorder.pitfall("CIO004")
    recorder.spool_operations(3)
    recorder.http_request_blocked(0.25)
    recorder.webhook_event("bounced")
    recorder.webhook_rejected("signature")
