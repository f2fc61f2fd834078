"""The delivery promises with the defaults, through the real SDK to the emulator.

Each test calls only ``cioguard.instrument(track_url=…)`` (plus a private metrics registry, and
``on_drop`` where the hook itself is under test): flush() tells the truth after a 401 and a 207,
a 429 burst followed by a 500 loses nothing, anonymous events do not split everyone's batches, and
``merge_customers`` never blocks the caller during an outage yet still arrives after the earlier
operations of both people.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.testing import FakeCustomerIO

SITE_ID, TRACK_KEY = "site-id", "track-key"

pytestmark = pytest.mark.filterwarnings("ignore::cioguard.PitfallWarning")  # default rules on


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False, site_id=SITE_ID, api_key=TRACK_KEY) as emulator:
        yield emulator


@pytest.fixture
def drops() -> Iterator[list[tuple[str, int, dict[str, int]]]]:
    seen: list[tuple[str, int, dict[str, int]]] = []
    yield seen
    cioguard.uninstrument(timeout=5)


def instrument(fake: FakeCustomerIO, drops: list[tuple[str, int, dict[str, int]]] | None = None) -> None:
    options: dict[str, Any] = {"track_url": fake.track_url, "registry": CollectorRegistry()}
    if drops is not None:
        options["on_drop"] = lambda reason, count, methods: drops.append((reason, count, dict(methods)))
    cioguard.instrument(**options)


def test_flush_is_false_after_a_401_and_on_drop_is_told(fake: FakeCustomerIO, drops: list[Any]) -> None:
    instrument(fake, drops)
    wrong = CustomerIO(SITE_ID, "not-the-key")
    wrong.track("u1", "signed_up", data={"a": 1})
    wrong.identify("u1", email="u1@example.com")
    assert not cioguard.flush(timeout=10)
    assert cioguard.stats()["dropped"]["rejected"] == 2
    assert drops == [("rejected", 2, {"track": 1, "identify": 1})]
    assert cioguard.flush(timeout=1)  # nothing new was lost since


def test_flush_is_false_after_a_207_rejection(fake: FakeCustomerIO, drops: list[Any]) -> None:
    instrument(fake, drops)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    cio.track("u1", "fine", data={"a": 1})
    cio.batch(
        [
            {"type": "person", "action": "event", "identifiers": {"id": "u2"}, "name": "good"},
            # two identifiers: the API rejects this entry alone (207)
            {
                "type": "person",
                "action": "event",
                "identifiers": {"id": "u3", "email": "x@y.z"},
                "name": "bad",
            },
        ]
    )
    assert not cioguard.flush(timeout=10)
    assert {e.name for e in fake.events} == {"fine", "good"}
    assert drops == [("rejected", 1, {"batch": 1})]


def test_on_drop_errors_are_logged_never_raised(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(reason: str, count: int, methods: object) -> None:
        raise RuntimeError("user bug")

    cioguard.instrument(track_url=fake.track_url, registry=CollectorRegistry(), on_drop=hook)
    try:
        CustomerIO(SITE_ID, "wrong").track("u1", "x", data={})
        assert not cioguard.flush(timeout=10)
        assert cioguard.stats()["errors"] >= 1
        assert any("on_drop hook" in r.getMessage() for r in caplog.records)
    finally:
        cioguard.uninstrument(timeout=5)


def test_a_429_burst_then_a_500_loses_nothing(fake: FakeCustomerIO, drops: list[Any]) -> None:
    instrument(fake, drops)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    fake.fail_next(6, status=429, retry_after=1)
    fake.fail_next(1, status=500)
    for i in range(300):
        cio.identify(f"p{i}", email=f"p{i}@example.com", n=i)
        for j in range(10):
            cio.track(f"p{i}", "burst_event", data={"n": j})
    assert cioguard.flush(timeout=60)
    assert len(fake.events) == 3_000
    assert len(fake.people) == 300
    assert drops == []
    assert fake.stats()["faults"]["status_429"] == 6


@pytest.mark.slow
def test_anonymous_events_do_not_split_other_peoples_batches(fake: FakeCustomerIO, drops: list[Any]) -> None:
    instrument(fake, drops)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    threads, per_thread, rate = 8, 500, 2_000.0  # 4 000 calls at 2 000 calls/s

    def send(t: int) -> None:
        began = time.monotonic()
        for i in range(per_thread):
            if i % 10 == 0:
                cio.track_anonymous(f"anon-{t}-{i}", "anon_event", data={"i": i})
            else:
                cio.track(f"t{t}-p{i % 40}", "steady_event", data={"i": i})
            ahead = (i + 1) / (rate / threads) - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert cioguard.flush(timeout=30)
    anonymous = threads * per_thread // 10
    others = threads * per_thread - anonymous
    assert len(fake.events) == threads * per_thread
    assert drops == []
    requests = len(fake.requests)
    print(f"anonymous={anonymous} others={others} requests={requests}")
    # Each anonymous event is a v1 request of its own; everything else rides in v2 batches of
    # hundreds (one per flush interval or per 2 000 entries), not cut short by the anonymous ones.
    assert requests <= anonymous + others // 100 + 5, requests


def test_merge_never_blocks_during_an_outage_and_keeps_order(drops: list[Any]) -> None:
    fake = FakeCustomerIO(https=False, site_id=SITE_ID, api_key=TRACK_KEY).start()
    port = fake.port
    instrument(fake, drops)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    fake.stop()  # connections refused
    try:
        cio.identify("secondary", email="s@example.com")
        cio.identify("primary", email="p@example.com")

        async def endpoint() -> float:
            began = time.perf_counter()
            cio.merge_customers("id", "primary", "id", "secondary")
            return time.perf_counter() - began

        blocked = asyncio.run(endpoint())
        cio.track("primary", "after_merge", data={})
        time.sleep(1.0)
        fake = FakeCustomerIO(https=False, site_id=SITE_ID, api_key=TRACK_KEY, port=port).start()
        assert cioguard.flush(timeout=45)
        paths = [r.path for r in fake.requests for _ in [0]]
        bodies = [r.body for r in fake.requests]
    finally:
        fake.stop()
    assert blocked < 0.05  # the event loop was not held while earlier operations waited
    merge_at = next(i for i, b in enumerate(bodies) if b'"merge"' in b or b"merge_customers" in b)
    secondary_at = next(i for i, b in enumerate(bodies) if b'"secondary"' in b and b"identify" in b)
    after_at = next(i for i, b in enumerate(bodies) if b"after_merge" in b)
    assert secondary_at < merge_at < after_at, paths
    assert drops == []
