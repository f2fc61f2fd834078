"""Histogram bucket boundaries, chosen for what each histogram measures and what it costs.

Shared by the Prometheus and OpenTelemetry recorders so both report the same distribution.
Every bucket is one time series per label combination, so the rule is: **few buckets on
labelled histograms, high resolution only on unlabelled ones** (one series set per process)::

    from cioguard.telemetry import buckets
    len(buckets.CALLER_SECONDS)             # 10: x (method, mode) label pairs
    len(buckets.BACKGROUND_CALL_SECONDS)    # 18: unlabelled, the µs detail of background calls

- ``CALLER_SECONDS`` (labelled by method, mode): caller time per call, 10 µs … 30 s — enough to
  tell a background call (µs) from a blocking one (ms … s) and to see slow blocking calls (the
  SDK's own retries under 429s and timeouts take tens of seconds).
- ``BACKGROUND_CALL_SECONDS`` (unlabelled): background-mode caller time, 1 µs … 1 s, with the
  resolution where the few-µs budget of a background call is decided.
- ``HTTP_SECONDS`` (labelled by endpoint): one HTTP request to Customer.io, 25 ms … 30 s.
- ``LAG_SECONDS`` (unlabelled): enqueue → acknowledged; ~``flush_interval`` normally, minutes
  while retrying (``delivery_timeout`` is 600 s by default).
- ``BATCH_OPERATIONS`` (unlabelled): operations per request, 1 … 5000.
- ``BLOCKED_SECONDS`` (unlabelled): time one web request spent blocked in Customer.io calls.
"""

from __future__ import annotations

CALLER_SECONDS: tuple[float, ...] = (1e-5, 1e-4, 0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
BACKGROUND_CALL_SECONDS: tuple[float, ...] = (
    1e-6, 2e-6, 3e-6, 4e-6, 5e-6, 7.5e-6, 1e-5, 1.5e-5, 2.5e-5, 5e-5,
    1e-4, 2.5e-4, 5e-4, 0.001, 0.005, 0.025, 0.1, 1.0,
)  # fmt: skip
HTTP_SECONDS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_SECONDS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
)  # fmt: skip
BATCH_OPERATIONS: tuple[float, ...] = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
BLOCKED_SECONDS: tuple[float, ...] = (
    1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
