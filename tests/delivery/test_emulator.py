"""The engine against the project's independent emulator (real HTTP, documented API)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from sink import make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.operations.model import Endpoint, Operation
from cioguard.testing import FakeCustomerIO


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False, site_id="site", api_key="key") as emulator:
        yield emulator


@pytest.fixture
def ep(fake: FakeCustomerIO) -> Endpoint:
    auth = "Basic " + base64.b64encode(b"site:key").decode()
    return Endpoint(api="track", base_url=fake.track_url.rstrip("/"), auth_header=auth)


def run(engine: DeliveryEngine, ops: list[Operation]) -> None:
    try:
        for op in ops:
            engine.submit(op)
        assert engine.flush(20.0)
    finally:
        engine.shutdown(2.0)


def test_chaos_every_event_once(fake: FakeCustomerIO, ep: Endpoint) -> None:
    fake.set_chaos(seed=3, p_5xx=0.2, p_reset=0.1)
    engine = DeliveryEngine(
        DeliveryConfig(
            retry_base=0.01, retry_cap=0.05, max_retries=20, flush_interval=0.01, max_batch_operations=20
        )
    )
    ops = [make_op(ep, person=f"u{i % 9}", seq=i) for i in range(400)]
    run(engine, ops)
    assert sorted(e.id or "" for e in fake.events) == sorted(op.op_id for op in ops)
    assert engine.stats()["retries"] >= 1
    assert sum(engine.stats()["dropped"].values()) == 0


def test_failure_after_processing_is_deduplicated_by_event_id(fake: FakeCustomerIO, ep: Endpoint) -> None:
    fake.fail_next(1, status=503, when="after")
    engine = DeliveryEngine(DeliveryConfig(retry_base=0.0, flush_interval=0.0, lanes=1))
    ops = [make_op(ep, seq=i) for i in range(5)]
    run(engine, ops)
    assert len(fake.events) == 5
    assert fake.duplicate_events >= 1


def test_retry_after_is_honoured(fake: FakeCustomerIO, ep: Endpoint) -> None:
    fake.fail_next(1, status=429, retry_after=1)
    engine = DeliveryEngine(DeliveryConfig(retry_base=0.0, flush_interval=0.0, lanes=1))
    run(engine, [make_op(ep)])
    first, second = fake.requests[:2]
    assert first.status == 429
    assert second.status == 200
    assert second.arrived_at - first.arrived_at >= 0.95
    assert engine.stats()["rate_limited"] == 1


@pytest.mark.slow
def test_rate_limit_is_held_at_the_server(fake: FakeCustomerIO, ep: Endpoint) -> None:
    engine = DeliveryEngine(
        DeliveryConfig(rate_limit=20.0, rate_burst=1, max_batch_operations=1, flush_interval=0.0, lanes=4)
    )
    run(engine, [make_op(ep, person=f"u{i}", seq=i) for i in range(30)])
    times = sorted(r.arrived_at for r in fake.requests)
    assert len(times) == 30
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 0.9, "more than 20 requests within one second"
    assert engine.stats()["rate_limited"] == 0
