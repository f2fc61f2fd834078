"""Outage mode in process with an injected clock: a 60 s outage costs < 40 requests, nothing is
lost, delivery resumes within ``retry_cap`` of recovery, and per-person order holds.

The engine's own scheduling core is stepped by hand (no threads, no sleeping): at each step it
either hands over a batch (sent through a scripted transport on the fake clock) or says how long
until something is due, and the clock jumps there. Defaults only (``DeliveryConfig()``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from sink import FakeClock, make_op

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.dispatch import Core
from cioguard.delivery.durable import SpoolLink
from cioguard.delivery.policy import OUTAGE_AFTER, EndpointHealth
from cioguard.delivery.sender import BatchSender
from cioguard.delivery.transport import Transport, TransportError, TransportResponse
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import NullRecorder

EP = Endpoint(api="track", base_url="http://127.0.0.1:9", auth_header="Basic eDp5", label="track")


class Outage:
    """503 then refused connections between ``start`` and ``end`` (fake seconds); 200 otherwise."""

    def __init__(self, clock: FakeClock, start: float, end: float) -> None:
        self.clock, self.start, self.end = clock, start, end
        self.during = 0
        self.requests: list[tuple[float, list[dict[str, object]]]] = []

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        now = self.clock.now
        if self.start <= now < self.end:
            self.during += 1
            if now < (self.start + self.end) / 2:
                return TransportResponse(503)
            raise TransportError("connection")
        data = orjson.loads(body)
        self.requests.append((now, data.get("batch", [data])))
        return TransportResponse(200)


def make_core(clock: FakeClock, transport: Transport, seed: int, **options: Any) -> Core:
    config = DeliveryConfig(**options)
    rng = random.Random(seed)

    def sender(counters: Counters, deadline: object) -> BatchSender:
        return BatchSender(config, transport, NullRecorder(), counters, clock, clock.sleep, rng, lambda: None)

    return Core(config, NullRecorder(), sender, lambda c: SpoolLink(None, c), clock, lambda: 0.0, rng)


def run(core: Core, clock: FakeClock, ops: list[tuple[float, Operation]], until: float) -> None:
    """Feed ``ops`` at their times and step the core until ``until`` (fake seconds)."""
    pending = list(ops)
    while clock.now < until:
        while pending and pending[0][0] <= clock.now:
            core.inbox.append(pending.pop(0)[1])
        with core.lock:
            decision = core.step(clock.now)
        if isinstance(decision, tuple):
            core.send(*decision)
            continue
        arrival = pending[0][0] if pending else until
        wake = clock.now + decision if decision is not None else until
        clock.now = max(clock.now + 1e-6, min(arrival, wake, until))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_sixty_second_outage_costs_few_requests_and_loses_nothing(seed: int) -> None:
    clock = FakeClock()
    start, end = clock.now + 5.0, clock.now + 65.0
    transport = Outage(clock, start, end)
    core = make_core(clock, transport, seed)
    # 20 operations/s for 70 s from 50 people, 10 % of them v1-only (sent alone).
    ops = []
    for i in range(1400):
        person = f"p{i % 50}"
        ops.append(
            (clock.now + i / 20, make_op(EP, person=person, seq=i, route="single" if i % 10 == 0 else "v2"))
        )
    run(core, clock, ops, end + 40.0)

    print("requests during the outage:", transport.during)
    assert transport.during < 40, transport.during
    delivered = [entry["id"] for _, batch in transport.requests for entry in batch]
    assert sorted(delivered) == sorted(op.op_id for _, op in ops)  # each once, none lost
    resumed = min(t for t, _ in transport.requests if t >= end)
    assert resumed - end <= DeliveryConfig().retry_cap
    last: dict[str, int] = {}
    for _, batch in transport.requests:
        for entry in batch:
            n = int(entry["attributes"]["n"] if "attributes" in entry else entry["data"]["n"])  # type: ignore[index]
            who = n % 50
            assert last.get(str(who), -1) < n, "a person's operations were reordered"
            last[str(who)] = n
    assert core.counters.snapshot()["dropped"] == dict.fromkeys(core.counters.dropped, 0)


def test_outage_policy_one_probe_at_a_time_capped_backoff() -> None:
    health = EndpointHealth(base=0.5, cap=30.0, rng=random.Random(7))
    now = 0.0
    for _ in range(OUTAGE_AFTER - 1):
        assert not health.failed(now, probe=False)
    assert health.failed(now, probe=False)  # the fifth in a row: outage
    allowed, wait = health.permit(now)
    gaps = []
    for _ in range(50):
        allowed, wait = health.permit(now)
        if not allowed:
            assert wait is not None
            gaps.append(wait)
            now += wait
        assert health.permit(now)[0]
        assert health.started(now)  # the probe
        assert health.permit(now) == (False, None)  # nobody else while it is out
        health.failed(now, probe=True)
    assert max(gaps) <= 30.0
    assert health.succeeded()  # the outage ends with the first success
    assert health.permit(now) == (True, None)


def test_a_dead_endpoint_expires_operations_at_delivery_timeout() -> None:
    clock = FakeClock()
    transport = Outage(clock, clock.now, clock.now + 10_000.0)  # never comes back
    config = DeliveryConfig(delivery_timeout=120.0)  # explicit opt-in: a short patience
    rng = random.Random(3)

    def sender(counters: Counters, deadline: object) -> BatchSender:
        return BatchSender(config, transport, NullRecorder(), counters, clock, clock.sleep, rng, lambda: None)

    core = Core(config, NullRecorder(), sender, lambda c: SpoolLink(None, c), clock, lambda: 0.0, rng)
    ops = [(clock.now, make_op(EP, person=f"p{i % 5}", seq=i)) for i in range(50)]
    run(core, clock, ops, clock.now + 119.0)
    assert core.counters.snapshot()["dropped"]["expired"] == 0  # still patient
    run(core, clock, [], clock.now + 5.0)
    assert core.counters.snapshot()["dropped"]["expired"] == 50
    assert core.sched.size == 0
    assert transport.during < 30  # outage mode: the 2 minutes cost few requests


@pytest.mark.parametrize("max_retries", [1, 3])
def test_an_outage_never_uses_up_max_retries(max_retries: int) -> None:
    # Explicit opt-in (max_retries): an outage counts only as time. Only a failure the endpoint's
    # previous answer did not share is an attempt, so a 60 s outage costs each operation at most
    # one (max_retries=0, "never retry", gives up at that first failure, as asked).
    clock = FakeClock()
    start, end = clock.now + 5.0, clock.now + 65.0
    transport = Outage(clock, start, end)
    core = make_core(clock, transport, 7, max_retries=max_retries)
    ops = [(clock.now + i / 20, make_op(EP, person=f"p{i % 50}", seq=i)) for i in range(400)]
    run(core, clock, ops, end + 40.0)
    delivered = [entry["id"] for _, batch in transport.requests for entry in batch]
    assert sorted(delivered) == sorted(op.op_id for _, op in ops)
    assert core.counters.snapshot()["dropped"]["expired"] == 0


class LongRetryAfter:
    """503s asking to wait ``waits`` (one per request, seconds as text), then 200s."""

    def __init__(self, clock: FakeClock, waits: list[str]) -> None:
        self.clock, self.waits = clock, list(waits)
        self.times: list[float] = []
        self.delivered: list[str] = []

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        self.times.append(self.clock.now)
        if self.waits:
            return TransportResponse(503, {"retry-after": self.waits.pop(0)})
        self.delivered += [str(entry["id"]) for entry in orjson.loads(body)["batch"]]
        return TransportResponse(200)


def test_a_long_retry_after_is_waited_out_but_never_past_expiry() -> None:
    """Defaults: Retry-After is honoured up to 5 minutes, and a wait is cut to end before the
    batch's oldest operation is ``delivery_timeout`` old, so the try after it still delivers."""
    clock = FakeClock()
    transport = LongRetryAfter(clock, ["250", "99999", "99999"])
    core = make_core(clock, transport, seed=1)
    ops = [(clock.now, make_op(EP, person="p1", seq=i)) for i in range(10)]
    start = clock.now
    run(core, clock, ops, start + 700.0)
    gaps = [round(b - a) for a, b in zip(transport.times, transport.times[1:], strict=False)]
    assert gaps[0] >= 250  # the first Retry-After, honoured
    assert gaps[1] == 300  # a day-long one: capped at retry_after_max
    assert transport.times[-1] - start < DeliveryConfig().delivery_timeout  # tried again in time
    assert sorted(transport.delivered) == sorted(op.op_id for _, op in ops)
    assert core.counters.snapshot()["dropped"] == dict.fromkeys(core.counters.dropped, 0)
