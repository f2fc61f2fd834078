"""In-process tests of the Redis scale-out against a real redis-server and the emulator."""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags
from scaleout_helpers import RedisServer, event_op, fake_endpoint, sequences

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.scaleout import RedisProducer, Worker
from cioguard.scaleout import consumer as consumer_module
from cioguard.scaleout.codec import GROUP, Keys, decode, encode, partition_of
from cioguard.scaleout.factory import build_producer
from cioguard.scaleout.leases import Leases
from cioguard.scaleout.ratelimit import RedisTokenBucket
from cioguard.scaleout.worker import main as worker_main
from cioguard.testing import FakeCustomerIO


@contextmanager
def running_worker(url: str, **kwargs: object) -> Iterator[Worker]:
    config = kwargs.pop("config", None) or DeliveryConfig(max_retries=5, retry_base=0.01, retry_cap=0.05)
    worker = Worker(url, config=config, block=0.05, **kwargs)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 5.0), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def test_entry_round_trip_and_stable_partitions(fake: FakeCustomerIO) -> None:
    op = event_op(fake_endpoint(fake), "person-ä", 7)
    back = decode(encode(op))
    for name in ("method", "route", "http_method", "path", "body", "shard_key", "op_id", "event_id"):
        assert getattr(back, name) == getattr(op, name)
    assert back.endpoint == op.endpoint  # auth header included
    assert back.created_at == op.created_at
    # crc32 is stable across processes (unlike the salted built-in hash).
    for key in ("u1", "u2", "person-ä"):
        assert partition_of(key, 8) == binascii.crc32(key.encode()) % 8
    assert len({partition_of(f"u{i}", 8) for i in range(100)}) == 8


def test_send_spans_link_to_the_producer_side_caller_span(
    redis_server: RedisServer, fake: FakeCustomerIO
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    caller = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    op = event_op(fake_endpoint(fake), "traced", 0)
    op.span_context = caller
    producer = RedisProducer(redis_server.url, partitions=1)
    producer.submit(op)
    assert producer.flush(5)
    with running_worker(redis_server.url, partitions=1, tracer=provider.get_tracer("test")):
        assert fake.wait_for(lambda: len(fake.events) >= 1, timeout=10)
    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    [link] = spans[0].links
    assert (link.context.trace_id, link.context.span_id) == (0xABC, 0xDEF)
    producer.shutdown(1)


def test_producer_to_worker_delivers_in_order(redis_server: RedisServer, fake: FakeCustomerIO) -> None:
    endpoint = fake_endpoint(fake)
    producer = RedisProducer(redis_server.url, partitions=4)
    people = [f"p{i}" for i in range(10)]
    for seq in range(30):
        for person in people:
            assert producer.submit(event_op(endpoint, person, seq))
    assert producer.flush(5)
    stats = producer.stats()
    assert stats["handed_over"] == 300
    assert stats["queue_size"] == 0
    with running_worker(redis_server.url, partitions=4, lease_ttl=1.0) as worker:
        assert fake.wait_for(lambda: len(fake.events) >= 300, timeout=10)
    assert fake.duplicate_events == 0
    assert sequences(fake) == {person: list(range(30)) for person in people}
    assert worker.stats()["delivered"] == 300
    client = redis_server.client()
    # Delivered entries are acknowledged and deleted: nothing pending, nothing left.
    assert sum(client.xlen(Keys().stream(i)) for i in range(4)) == 0
    producer.shutdown(1)


def test_worker_reclaims_entries_of_a_dead_consumer(
    redis_server: RedisServer, fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "FORGET_IDLE_MS", 0)
    endpoint = fake_endpoint(fake)
    producer = RedisProducer(redis_server.url, partitions=1)
    for seq in range(20):
        producer.submit(event_op(endpoint, "solo", seq))
    assert producer.flush(5)
    client = redis_server.client()
    stream = Keys().stream(0)
    client.xgroup_create(stream, GROUP, id="0")
    # A consumer that read 10 entries and died before acknowledging them.
    taken: Any = client.xreadgroup(GROUP, "dead", {stream: ">"}, count=10)  # type: ignore[arg-type]
    assert len(taken[0][1]) == 10
    with running_worker(redis_server.url, partitions=1, lease_ttl=0.3):
        assert fake.wait_for(lambda: len(fake.events) >= 20, timeout=10)
    assert sequences(fake) == {"solo": list(range(20))}
    assert client.xpending(stream, GROUP)["pending"] == 0
    # The dead consumer, now holding nothing, was removed from the group.
    names = [c["name"] for c in client.xinfo_consumers(stream, GROUP)]
    assert b"dead" not in names
    assert len(names) == 1
    producer.shutdown(1)


def test_leases_split_partitions_and_move_after_expiry(redis_server: RedisServer) -> None:
    client = redis_server.client()
    a = Leases(client, Keys(), 8, "worker-a", ttl=0.3)
    assert a.rebalance()[0] == set(range(8))  # alone: everything
    b = Leases(client, Keys(), 8, "worker-b", ttl=0.3)
    assert b.rebalance()[0] == set()  # all taken; a must give back first
    extra = a.surplus()
    assert len(extra) == 4
    for partition in extra:
        a.release(partition)
    assert b.rebalance()[0] == extra
    assert a.held.isdisjoint(b.held)
    assert len(a.held | b.held) == 8
    time.sleep(0.4)  # a stops renewing (dies): its leases expire after the ttl
    b.rebalance()
    assert b.held == set(range(8))
    assert a.rebalance()[1] == set(range(8)) - extra  # a notices it lost them


def test_global_token_bucket_is_shared(redis_server: RedisServer, fake: FakeCustomerIO) -> None:
    client = redis_server.client()
    endpoint = fake_endpoint(fake)
    clock = time.monotonic
    buckets = [RedisTokenBucket(client, Keys(), endpoint, rate=2.0, burst=5, clock=clock) for _ in range(3)]
    granted = [b.reserve(clock()) for _ in range(4) for b in buckets]
    # 12 requests from three "workers" in a few ms: exactly the burst of 5 gets through.
    assert granted.count(0.0) == 5
    assert all(0 < wait <= 0.5 for wait in granted if wait)
    buckets[0].pause_until(clock() + 2.0)  # a 429 with Retry-After: 2 seen by one worker
    wait = buckets[2].reserve(clock())
    assert 1.5 < wait <= 2.0  # honoured by the others


def test_429_pauses_every_worker(redis_server: RedisServer, fake: FakeCustomerIO) -> None:
    endpoint = fake_endpoint(fake)
    producer = RedisProducer(redis_server.url, partitions=2)
    fake.fail_next(1, status=429, retry_after=1)
    config = DeliveryConfig(max_retries=5, max_batch_operations=1, retry_base=0.01)
    for i in range(6):
        producer.submit(event_op(endpoint, f"u{i}", 0))
    assert producer.flush(5)
    with running_worker(redis_server.url, partitions=2, lease_ttl=1.0, config=config):
        assert fake.wait_for(lambda: len(fake.events) >= 6, timeout=10)
    arrivals = [r.arrived_at for r in fake.requests]
    assert fake.requests[0].status == 429
    # Apart from a request the other consumer already had in flight (within a few ms), every
    # later request from either partition's consumer waited for the shared 1 s pause.
    later = [t - arrivals[0] for t in arrivals[1:]]
    assert sum(1 for d in later if d < 0.05) <= 1
    assert not [d for d in later if 0.05 <= d < 0.9], later
    assert sum(1 for d in later if d >= 0.9) >= 5
    producer.shutdown(1)


def _dead_url() -> str:
    return RedisServer().url  # a free port nobody listens on


def test_fallback_when_redis_is_down_then_reconnects(fake: FakeCustomerIO) -> None:
    server = RedisServer()
    endpoint = fake_endpoint(fake)
    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.01))
    producer = RedisProducer(server.url, partitions=2, fallback=engine, reconnect_interval=0.05)
    try:
        for seq in range(5):
            assert producer.submit(event_op(endpoint, "f", seq))
        assert producer.flush(5)
        assert fake.wait_for(lambda: len(fake.events) >= 5, timeout=5)  # via the local sender
        stats = producer.stats()
        assert stats["fallback"] == 5
        assert stats["redis_up"] is False
        assert stats["redis_errors"] >= 1
        server.start()
        deadline = time.monotonic() + 5
        while not producer.stats()["redis_up"] and time.monotonic() < deadline:
            producer.submit(event_op(endpoint, "g", 0))  # goes to the fallback until reconnected
            time.sleep(0.05)
        assert producer.stats()["redis_up"]
        assert producer.submit(event_op(endpoint, "h", 1))
        assert producer.flush(5)
        assert producer.stats()["handed_over"] == 1
        assert server.client().xlen(Keys().stream(partition_of("h", 2))) == 1
    finally:
        producer.shutdown(2)
        server.cleanup()


def test_without_fallback_buffers_then_counts_overflow(fake: FakeCustomerIO) -> None:
    server = RedisServer()
    producer = RedisProducer(server.url, partitions=2, max_buffer=10, reconnect_interval=0.05)
    endpoint = fake_endpoint(fake)
    try:
        results = [producer.submit(event_op(endpoint, "b", seq)) for seq in range(15)]
        assert not producer.flush(0.3)  # Redis is down: nothing handed over yet
        # The first pipeline failed and went back to the buffer; the rest overflowed.
        stats = producer.stats()
        assert results.count(True) == stats["accepted"] == 10
        assert stats["not_handed_over"] == 5
        assert stats["dropped"]["queue_full"] == 5
        server.start()
        assert producer.flush(5)
        client = server.client()
        stream = Keys().stream(partition_of("b", 2))
        entries: Any = client.xrange(stream)
        bodies = [decode(fields).body for _, fields in entries]
        assert [event_op_seq(b) for b in bodies] == list(range(10))  # order kept through the outage
    finally:
        producer.shutdown(1)
        server.cleanup()


def event_op_seq(body: bytes) -> int:
    import json

    return int(json.loads(body)["attributes"]["seq"])


def test_submit_after_shutdown_is_dropped(redis_server: RedisServer, fake: FakeCustomerIO) -> None:
    producer = RedisProducer(redis_server.url)
    producer.shutdown(1)
    assert not producer.submit(event_op(fake_endpoint(fake), "z", 0))
    assert producer.stats()["dropped"]["shutdown"] == 1


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="partitions"):
        RedisProducer("redis://127.0.0.1:1/0", partitions=0)
    with pytest.raises(ValueError, match="max_buffer"):
        RedisProducer("redis://127.0.0.1:1/0", max_buffer=0)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(_dead_url(), socket_connect_timeout=0.2).ping()


def test_build_producer_options(redis_server: RedisServer) -> None:
    config = DeliveryConfig(max_queue_size=123)
    local = build_producer(redis_server.url, partitions=3, fallback="local", config=config)
    drop = build_producer(redis_server.url, fallback="drop", config=config)
    try:
        assert local.stats()["queue_capacity"] == 123
        assert "fallback_stats" in local.stats()
        assert "fallback_stats" not in drop.stats()
    finally:
        local.shutdown(1)
        drop.shutdown(1)
    with pytest.raises(ValueError, match="queue_fallback"):
        build_producer(redis_server.url, fallback="spool")
    with pytest.raises(ValueError, match="queue_url"):
        build_producer("http://127.0.0.1:6379")


def test_worker_cli_needs_a_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CIOGUARD_QUEUE_URL", raising=False)
    assert worker_main([]) == 2
    assert "--redis" in capsys.readouterr().err
    assert worker_main(["--redis", "redis://127.0.0.1:1/0", "--rate-limit", "0"]) == 2
    assert "rate_limit" in capsys.readouterr().err


def test_undecodable_entries_are_acknowledged_not_blocking(
    redis_server: RedisServer, fake: FakeCustomerIO
) -> None:
    client = redis_server.client()
    stream = Keys().stream(0)
    client.xadd(stream, {b"something": b"else"})
    client.xadd(stream, {b"o1": b"not json\n{}"})
    producer = RedisProducer(redis_server.url, partitions=1)
    producer.submit(event_op(fake_endpoint(fake), "after", 0))
    assert producer.flush(5)
    with running_worker(redis_server.url, partitions=1, lease_ttl=1.0) as worker:
        assert fake.wait_for(lambda: len(fake.events) >= 1, timeout=10)
    assert worker.stats()["errors"] == 2
    assert client.xlen(stream) == 0
    producer.shutdown(1)


def test_spool_keeps_the_buffer_across_an_outage_and_a_restart(fake: FakeCustomerIO, tmp_path: Path) -> None:
    server = RedisServer()  # not started yet: Redis is down
    spool = str(tmp_path / "producer.spool")
    endpoint = fake_endpoint(fake)
    first = RedisProducer(server.url, partitions=1, spool_path=spool, reconnect_interval=0.05)
    for seq in range(5):
        assert first.submit(event_op(endpoint, "kept", seq))
    first.shutdown(0.5)  # Redis still down: kept in the spool, not dropped
    stats = first.stats()
    assert stats["not_handed_over"] == 5
    assert stats["dropped"]["shutdown"] == 0
    server.start()
    try:
        second = RedisProducer(server.url, partitions=1, spool_path=spool)
        assert second.flush(5)
        assert second.stats()["handed_over"] == 5
        entries: Any = server.client().xrange(Keys().stream(0))
        assert [event_op_seq(decode(fields).body) for _, fields in entries] == list(range(5))
        second.shutdown(1)
        third = RedisProducer(server.url, partitions=1, spool_path=spool)  # nothing left to resend
        assert third.flush(1)
        assert third.stats()["handed_over"] == 0
        third.shutdown(1)
    finally:
        server.cleanup()
