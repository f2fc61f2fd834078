"""Rows for the blocking ``customerio`` SDK: ``track`` and ``identify`` over HTTPS at 0 and 50 ms.

Each call is a real HTTPS request on a kept-alive connection to the sink (or the emulator with
``--target emulator``), so a call costs at least the server delay. These rows are the baseline that
background delivery is compared with (the ``vs sdk`` ratio column uses ``track`` at 0 ms).
"""

from __future__ import annotations

from typing import Any

from benchmarks.harness import EVENT_NAME, SMALL_DATA, Bench, customer_ids
from benchmarks.results import Row
from benchmarks.target import cio_target
from benchmarks.timing import latencies

GROUP = "sdk"


def run(bench: Bench) -> None:
    target = cio_target(bench)
    ids = customer_ids()
    sizes = bench.sizes
    for delay_ms in (0, 50):
        for method in ("track", "identify"):
            name = f"customerio SDK {method}, {delay_ms} ms"

            def measure(method: str = method, delay_ms: int = delay_ms, name: str = name) -> Row:
                target.set_latency(delay_ms / 1000)
                client: Any = target.client()
                try:
                    if method == "track":
                        call: Any = lambda: client.track(next(ids), EVENT_NAME, SMALL_DATA)  # noqa: E731
                    else:
                        call = lambda: client.identify(next(ids), email="a@example.com", plan="pro")  # noqa: E731
                    count = sizes.slow_calls * (10 if delay_ms == 0 else 1)
                    stats = latencies(call, count, sizes.slow_seconds, warmup=3)
                    baseline = "sdk" if (method, delay_ms) == ("track", 0) else ""
                    return Row.caller(GROUP, name, stats, baseline=baseline, server_delay_ms=delay_ms)
                finally:
                    client.close()
                    target.set_latency(0.0)

            bench.guard(GROUP, name, "us/call", measure)
