"""``cioguard worker``: deliver operations that producers put on Redis Streams.

::

    cioguard worker --redis redis://10.0.0.5:6379/0 --partitions 8 --metrics-port 9464 \\
        --rate-limit 100 --rate-burst 20

Run any number of workers on any number of hosts. Each holds leases on a fair share of the
partitions (:mod:`cioguard.scaleout.leases`) and runs one :class:`PartitionConsumer` per leased
partition, so one person's operations are sent by one worker at a time, in order. Sending is the
in-process :class:`~cioguard.delivery.sender.BatchSender` (batching, retries with backoff, 207
handling, ``Retry-After``) with the global Redis token bucket and the shared 429 pause
(:mod:`cioguard.scaleout.ratelimit`). A worker killed with ``kill -9`` loses nothing: its leases
expire after ``--lease-ttl`` and the next owner reclaims its pending entries (sent again at most
once per crash; Customer.io dedupes events by id). SIGTERM/SIGINT stop it gracefully within
``--shutdown-timeout``. ``--metrics-port`` serves the usual ``customerio_*`` metrics.

In Python: ``Worker(redis_url, partitions=8, config=DeliveryConfig(...), tracer=tracer).run(stop)``
(with a tracer, each send attempt is a CLIENT span linked to the producer-side caller spans).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random as _random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.transport import RequestsTransport, Transport
from cioguard.scaleout.codec import Keys
from cioguard.scaleout.connection import connect
from cioguard.scaleout.consumer import PartitionConsumer
from cioguard.scaleout.leases import Leases
from cioguard.scaleout.persistence import safe_redis_url, warn_if_not_durable
from cioguard.scaleout.ratelimit import RedisBatchSender
from cioguard.telemetry.recorder import NullRecorder, Recorder
from cioguard.threads import daemon_thread


class Worker:
    """Consumes the partitions it leases until ``stop`` is set; see the module docstring."""

    def __init__(
        self,
        redis_url: str,
        *,
        partitions: int = 8,
        prefix: str = "cioguard",
        config: DeliveryConfig | None = None,
        recorder: Recorder | None = None,
        transport: Transport | None = None,
        lease_ttl: float = 10.0,
        name: str | None = None,
        block: float = 0.5,
        tracer: Any = None,
    ) -> None:
        self.config = config or DeliveryConfig()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._client = connect(redis_url, timeout=max(2.0, block * 2))
        self._keys = Keys(prefix)
        self._partitions = partitions
        self._recorder: Recorder = recorder or NullRecorder()
        self._lease_ttl = lease_ttl
        self._block = block
        self._deadline: float | None = None
        self.counters = Counters(time.monotonic)
        self.counters.values["redis_errors"] = 0
        self._transport = transport or RequestsTransport(max(4, partitions))
        self._sender = RedisBatchSender(
            self._client,
            self._keys,
            self.config,
            self._transport,
            self._recorder,
            self.counters,
            time.monotonic,
            time.sleep,
            _random.Random(),
            lambda: self._deadline,
            tracer,
        )
        self._leases = Leases(self._client, self._keys, partitions, self.name, lease_ttl)
        self._consumers: dict[int, PartitionConsumer] = {}

    def run(self, stop: threading.Event, shutdown_timeout: float = 10.0) -> None:
        """Coordinate leases and consumers until ``stop`` is set, then stop gracefully."""
        interval = self._lease_ttl / 3
        while not stop.is_set():
            try:
                self._rebalance()
            except redis.RedisError as exc:
                # Redis down: consumers retry by themselves; leases lapse after the ttl and
                # are re-acquired (with their pending entries) once Redis is back.
                self.counters.add("redis_errors")
                logger.debug("cioguard worker: lease round failed: %r", exc)
            except Exception as exc:
                self.counters.error("worker", exc)
            stop.wait(interval)
        self._shutdown(shutdown_timeout)

    def _rebalance(self) -> None:
        consumer: PartitionConsumer | None
        for partition, consumer in list(self._consumers.items()):
            if not consumer.alive:  # stopped by a shutdown-cut batch: restart it
                del self._consumers[partition]
        gained, lost = self._leases.rebalance()
        for partition in lost:
            consumer = self._consumers.pop(partition, None)
            if consumer is not None:
                consumer.stop()
        for partition in self._leases.surplus():
            consumer = self._consumers.pop(partition, None)
            if consumer is not None:
                consumer.stop()
                # Invariant: the lease is given back only once its consumer has finished its
                # batch, so the next owner never sends alongside us.
                if not consumer.join(self._lease_ttl / 3):
                    self._consumers[partition] = consumer  # still sending: release next round
                    continue
            self._leases.release(partition)
        for partition in sorted(self._leases.held):
            if partition not in self._consumers:
                self._start_consumer(partition)
        if gained:
            held = sorted(self._leases.held)
            logger.info("cioguard worker %s: now consuming partitions %s", self.name, held)

    def _start_consumer(self, partition: int) -> None:
        consumer = PartitionConsumer(
            self._client,
            self._keys.stream(partition),
            self.name,
            self._sender,
            self.config,
            self._recorder,
            self.counters,
            min_idle=self._lease_ttl,
            lease=(self._keys.lease(partition), self.name),
            block=self._block,
        )
        self._consumers[partition] = consumer
        consumer.start()

    def _shutdown(self, timeout: float) -> None:
        end = time.monotonic() + max(0.0, timeout)
        self._deadline = end
        for consumer in self._consumers.values():
            consumer.stop()
        for consumer in self._consumers.values():
            consumer.join(end - time.monotonic())
        with contextlib.suppress(redis.RedisError):  # else the leases expire by themselves
            self._leases.release_all()
        self._client.close()

    def stats(self) -> dict[str, Any]:
        out = self.counters.snapshot()
        out["partitions"] = sorted(self._consumers)
        return out


_DESCRIPTION = (
    "Deliver operations that cioguard producers (instrument(queue_url=...)) put on Redis Streams. "
    "Run any number of workers: each leases a share of the partitions, so one person's operations "
    "are sent by one worker at a time, in order. SIGTERM/SIGINT stop it gracefully."
)


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: …)`` unless the help text already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or action.default is None:
            return text
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard worker",
        description=_DESCRIPTION,
        formatter_class=_DefaultsShown,
    )
    env = os.environ.get
    add = parser.add_argument
    add("--redis", default=env("CIOGUARD_QUEUE_URL"), help="redis://, rediss:// or unix:// URL "
        "of the queue (default: $CIOGUARD_QUEUE_URL)")  # fmt: skip
    add(
        "--partitions",
        type=int,
        default=8,
        help="stream partitions; must match the producers' queue_partitions",
    )
    add("--prefix", default="cioguard", help="Redis key prefix shared with the producers")
    add(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port (off if unset)"
    )
    add("--metrics-host", default="127.0.0.1", help="address to bind --metrics-port to")
    add("--rate-limit", type=float, default=100.0, help="requests/s per workspace, shared by all workers")
    add("--rate-burst", type=int, default=20, help="token-bucket size of --rate-limit")
    add("--max-retries", type=int, default=None, help="optional bound on attempts per batch "
        "(unset: retry until the operation is --delivery-timeout old)")  # fmt: skip
    add("--delivery-timeout", type=float, default=600.0, help="seconds an operation may be retried "
        "before it is dropped as expired")  # fmt: skip
    add("--max-batch-operations", type=int, default=2_000, help="entries per /api/v2/batch request")
    add("--request-timeout", type=float, default=10.0, help="seconds per HTTP request to Customer.io")
    add(
        "--lease-ttl",
        type=float,
        default=10.0,
        help="seconds before a dead worker's partitions are taken over",
    )
    add("--shutdown-timeout", type=float, default=10.0, help="seconds to finish in-flight batches on SIGTERM")
    add("--wait-for-redis", type=float, default=0.0, metavar="SECONDS", help="keep trying an unreachable "
        "Redis this long at start-up (0: fail at once with the address)")  # fmt: skip
    add("--name", default=None, help="consumer name (default: host:pid:random)")
    return parser


def _reach_redis(url: str, wait: float, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Ping Redis (retrying up to ``wait`` s); an error message naming the address, or None."""
    client = connect(url, timeout=2.0)
    end = time.monotonic() + max(0.0, wait)
    try:
        while True:
            try:
                client.ping()
            except redis.RedisError as exc:
                if time.monotonic() >= end:
                    return (
                        f"cannot reach Redis at {safe_redis_url(url)} ({type(exc).__name__}: {exc}). "
                        "Start Redis or fix --redis / CIOGUARD_QUEUE_URL; --wait-for-redis SECONDS "
                        "keeps trying at start-up."
                    )
                sleep(0.5)
                continue
            warn_if_not_durable(client, safe_redis_url(url))
            return None
    finally:
        client.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_metrics(host: str, port: int) -> Recorder:
    from cioguard.metrics import make_wsgi_app
    from cioguard.telemetry import build_recorder

    recorder = build_recorder()
    server = make_server(host, port, make_wsgi_app(), handler_class=_QuietHandler)
    daemon_thread(server.serve_forever, "cioguard-worker-metrics").start()
    return recorder


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.redis:
        print("cioguard worker: --redis URL (or CIOGUARD_QUEUE_URL) is required", file=sys.stderr)
        return 2
    try:
        config = DeliveryConfig(
            rate_limit=args.rate_limit,
            rate_burst=args.rate_burst,
            delivery_timeout=args.delivery_timeout,
            max_retries=args.max_retries,
            max_batch_operations=args.max_batch_operations,
            request_timeout=args.request_timeout,
        )
    except ValueError as exc:
        print(f"cioguard worker: {exc}", file=sys.stderr)
        return 2
    problem = _reach_redis(args.redis, args.wait_for_redis)
    if problem is not None:
        print(f"cioguard worker: {problem}", file=sys.stderr)
        return 1
    recorder: Recorder = NullRecorder()
    if args.metrics_port is not None:
        recorder = _serve_metrics(args.metrics_host, args.metrics_port)
    worker = Worker(
        args.redis,
        partitions=args.partitions,
        prefix=args.prefix,
        config=config,
        recorder=recorder,
        lease_ttl=args.lease_ttl,
        name=args.name,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"cioguard worker {worker.name}: connected to {safe_redis_url(args.redis)}, "
        f"consuming {args.partitions} partition(s)",
        flush=True,
    )
    worker.run(stop, args.shutdown_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
