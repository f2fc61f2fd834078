"""Quick delivery measurements (not a test): ``python tests/delivery/bench_delivery.py``.

Prints submit() cost (median µs) without spool and with each spool mode, and delivered ops/s
to a loopback sink at 0 ms and 50 ms server delay, with HTTP requests per 1 000 operations.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.operations.model import Endpoint


def submit_cost(sink: Sink, endpoint: Endpoint, spool: str | None, sync: str, n: int = 20_000) -> float:
    engine = DeliveryEngine(
        DeliveryConfig(max_queue_size=n + 10, spool_path=spool, spool_sync=sync)  # type: ignore[arg-type]
    )
    ops = [make_op(endpoint, person=f"p{i % 500}") for i in range(n)]
    samples = []
    for op in ops:
        t0 = time.perf_counter_ns()
        engine.submit(op)
        samples.append(time.perf_counter_ns() - t0)
    engine.flush(60)
    engine.shutdown(5)
    return statistics.median(samples) / 1000


def throughput(sink: Sink, endpoint: Endpoint, delay: float, n: int = 200_000) -> tuple[float, float]:
    sink.default = Reply(200, delay=delay)
    before = len(sink.requests)
    engine = DeliveryEngine(DeliveryConfig(max_queue_size=n + 10, rate_limit=10_000.0, flush_interval=0.05))
    ops = [make_op(endpoint, person=f"p{i % 500}") for i in range(n)]
    t0 = time.perf_counter()
    for op in ops:
        engine.submit(op)
    ok = engine.flush(120)
    elapsed = time.perf_counter() - t0
    engine.shutdown(5)
    assert ok
    requests = len(sink.requests) - before
    return n / elapsed, requests * 1000 / n


def main() -> None:
    sink = Sink()
    endpoint = Endpoint(api="track", base_url=sink.url, auth_header="Basic eDp5")
    print(f"submit, no spool:        {submit_cost(sink, endpoint, None, 'group'):6.2f} us median")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"submit, spool group:     {submit_cost(sink, endpoint, tmp + '/g', 'group'):6.2f} us median")
        always = submit_cost(sink, endpoint, tmp + "/a", "always", 3_000)
        print(f"submit, spool always:    {always:6.2f} us median")
    for delay in (0.0, 0.05):
        rate, per_k = throughput(sink, endpoint, delay)
        print(
            f"delivered at {delay * 1000:3.0f} ms delay: {rate:9.0f} ops/s, {per_k:.2f} requests per 1000 ops"
        )
    sink.close()


if __name__ == "__main__":
    main()
