"""Histogram bucket boundaries, chosen for what each histogram measures.

Shared by the Prometheus and OpenTelemetry recorders so both report the same distribution:

- ``CALLER_SECONDS``: time a patched SDK call takes on the caller's thread. In background mode it
  is a few microseconds; in blocking mode it is a whole HTTP exchange (up to the 30 s timeout).
- ``HTTP_SECONDS``: one HTTP request to Customer.io, 1 ms … 30 s.
- ``LAG_SECONDS``: enqueue → acknowledged; ~``flush_interval`` normally, minutes when retrying.
- ``BATCH_OPERATIONS``: operations per request, 1 … 5000.
- ``BLOCKED_SECONDS``: time one web request spent blocked in Customer.io calls.
"""

from __future__ import annotations

CALLER_SECONDS: tuple[float, ...] = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
HTTP_SECONDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
LAG_SECONDS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
)  # fmt: skip
BATCH_OPERATIONS: tuple[float, ...] = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
BLOCKED_SECONDS: tuple[float, ...] = (
    1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
