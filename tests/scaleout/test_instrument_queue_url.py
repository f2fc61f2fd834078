"""`cioguard.instrument(queue_url=...)`: the real SDK hands operations to Redis; a worker delivers them."""

from __future__ import annotations

import threading

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry
from scaleout_helpers import RedisServer

import cioguard
from cioguard.delivery.config import DeliveryConfig
from cioguard.scaleout import RedisProducer, Worker
from cioguard.testing import FakeCustomerIO


def test_sdk_calls_go_through_redis_to_a_worker(redis_server: RedisServer, fake: FakeCustomerIO) -> None:
    client = CustomerIO(fake.site_id, fake.api_key)  # the real host: track_url reroutes the worker's sends
    cioguard.instrument(
        queue_url=redis_server.url,
        queue_partitions=4,
        track_url=fake.track_url,
        registry=CollectorRegistry(),
        pitfalls="off",
    )
    try:
        from cioguard.instrumentation.instrumentor import active_runtime

        runtime = active_runtime()
        assert runtime is not None
        assert isinstance(runtime.engine, RedisProducer)
        client.identify("u1", email="ada@example.com")
        for number in range(20):
            assert client.track("u1", "queued", data={"n": number}) is None
        assert cioguard.flush(timeout=10)  # handed over to Redis
        assert fake.events == []  # nothing is sent by the producer itself
        worker = Worker(redis_server.url, partitions=4, config=DeliveryConfig(), block=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop, 5.0), daemon=True)
        thread.start()
        try:
            assert fake.wait_for(lambda: len(fake.events) == 20, timeout=15)
        finally:
            stop.set()
            thread.join(10)
        assert [event.data["n"] for event in fake.events] == list(range(20))  # per-person order
        assert fake.person("u1") is not None
    finally:
        cioguard.uninstrument(timeout=5)


def test_queue_url_must_be_a_redis_url() -> None:
    with pytest.raises(ValueError, match="option queue_url"):
        cioguard.instrument(queue_url="http://127.0.0.1:6379")
