"""Quick scale-out measurements (not a test): ``python tests/scaleout/bench_scaleout.py [N]``.

Prints (1) ``RedisProducer.submit`` caller cost (median and p99 µs) against a local redis-server,
and (2) delivered events/s with 1, 2 and 4 ``cioguard worker`` processes draining N queued
events, next to the in-process ``DeliveryEngine`` sending the same N events. The emulator runs in
its own process (``store=False`` sink, ``LATENCY`` s per request, batches of ``BATCH`` events) so
it does not share a GIL with the sender under test.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scaleout_helpers import RedisServer, child_env, event_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.operations.model import Endpoint
from cioguard.scaleout import RedisProducer

LATENCY = float(os.environ.get("BENCH_LATENCY", "0.05"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "8"))
BATCH, PEOPLE = 100, 400
_AUTH = "Basic c2l0ZS1pZDp0cmFjay1rZXk="  # site-id:track-key, the emulator's defaults


def serve_emulator() -> None:
    """Child mode: run the emulator, print its URL, answer each stdin line with its stats."""
    from cioguard.testing import FakeCustomerIO

    with FakeCustomerIO(https=False, store=False, latency=LATENCY) as fake:
        print(fake.url, flush=True)
        for _ in sys.stdin:
            print(json.dumps(fake.stats()), flush=True)


class Emulator:
    def __init__(self) -> None:
        args = [sys.executable, __file__, "--serve-emulator"]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def events(self) -> int:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return int(json.loads(self.proc.stdout.readline())["events"])

    def wait_events(self, target: int, timeout: float = 300) -> float:
        end = time.monotonic() + timeout
        while (n := self.events()) < target:
            if time.monotonic() > end:
                raise TimeoutError(f"{n}/{target} events")
            time.sleep(0.01)
        return time.monotonic()

    def cpu(self) -> float:
        """CPU seconds the emulator process used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def caller_cost(url: str, endpoint: Endpoint, n: int) -> tuple[float, float]:
    producer = RedisProducer(url, partitions=PARTITIONS, max_buffer=n + 10)
    ops = [event_op(endpoint, f"p{i % PEOPLE}", i) for i in range(n)]
    samples = []
    for op in ops:
        t0 = time.perf_counter_ns()
        producer.submit(op)
        samples.append(time.perf_counter_ns() - t0)
    assert producer.flush(60)
    producer.shutdown(5)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def workers_rate(redis: RedisServer, emulator: Emulator, endpoint: Endpoint, workers: int, n: int) -> float:
    """Start the workers, wait until they have split the partitions, then queue and time N events."""
    client = redis.client()
    client.flushall()
    entry = "import sys; from cioguard.scaleout.worker import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", entry, "--redis", redis.url, "--partitions", str(PARTITIONS)]
    args += ["--rate-limit", "100000", "--rate-burst", "1000", "--max-batch-operations", str(BATCH)]
    args += ["--lease-ttl", "1.5"]
    procs = [subprocess.Popen(args, env=child_env(), stdout=subprocess.DEVNULL) for _ in range(workers)]
    ops = [event_op(endpoint, f"p{i % PEOPLE}", i) for i in range(n)]
    producer = RedisProducer(redis.url, partitions=PARTITIONS, max_buffer=n + 10)
    try:
        balanced = time.monotonic() + 60
        while True:
            owners = [client.get(f"cioguard:lease:{i}") for i in range(PARTITIONS)]
            if None not in owners and len(set(owners)) == workers:
                break
            if time.monotonic() > balanced:
                raise TimeoutError("workers did not split the partitions")
            time.sleep(0.05)
        time.sleep(0.5)  # consumers start and reclaim (nothing to reclaim here)
        before = emulator.events()
        start = time.monotonic()
        for op in ops:
            producer.submit(op)
        assert producer.flush(60)
        end = emulator.wait_events(before + n)
    finally:
        producer.shutdown(5)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    return n / (end - start)


def in_process_rate(emulator: Emulator, endpoint: Endpoint, n: int) -> float:
    engine = DeliveryEngine(DeliveryConfig(max_queue_size=n + 10, max_batch_operations=BATCH))
    ops = [event_op(endpoint, f"p{i % PEOPLE}", i) for i in range(n)]
    before = emulator.events()
    start = time.monotonic()
    for op in ops:
        engine.submit(op)
    assert engine.flush(300)
    end = emulator.wait_events(before + n)
    engine.shutdown(5)
    return n / (end - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    redis = RedisServer(fsync="everysec")  # the production setting (see cioguard.scaleout)
    redis.start()
    emulator = Emulator()
    endpoint = Endpoint(api="track", base_url=emulator.url, auth_header=_AUTH, label="track")
    try:
        median, p99 = caller_cost(redis.url, endpoint, n)
        print(f"RedisProducer.submit: median {median:.2f} µs, p99 {p99:.2f} µs ({n} calls)")
        print(
            f"delivery of {n} events, {LATENCY * 1000:.0f} ms per request, "
            f"batches of {BATCH}, {PARTITIONS} partitions:"
        )
        print(f"  ({os.cpu_count()} CPU cores; emulator CPU shown as a share of one core)")
        cpu = emulator.cpu()
        rate = in_process_rate(emulator, endpoint, n)
        share = (emulator.cpu() - cpu) / (n / rate)
        print(f"  in-process DeliveryEngine (4 lanes): {rate:8.0f} events/s  emulator {share:4.0%}")
        for workers in (1, 2, 4):
            cpu = emulator.cpu()
            rate = workers_rate(redis, emulator, endpoint, workers, n)
            share = (emulator.cpu() - cpu) / (n / rate)  # approximate: includes the balance wait
            print(f"  {workers} cioguard worker process(es):     {rate:8.0f} events/s  emulator {share:4.0%}")
    finally:
        emulator.close()
        redis.cleanup()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-emulator"]:
        serve_emulator()
    else:
        main()
