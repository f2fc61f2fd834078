"""Fault injection seen through the real SDK's own retry behaviour and through raw clients."""

from __future__ import annotations

import http.client
import time

import pytest
from customerio import CustomerIOException

from cioguard.testing import FakeCustomerIO

from .conftest import Raw


def test_sdk_retries_through_500s(fake: FakeCustomerIO) -> None:
    fake.fail_next(2, status=500)
    assert fake.client().track("u1", "paid").status_code == 200
    assert [r.status for r in fake.requests] == [500, 500, 200]
    assert [r.fault for r in fake.requests] == ["status_500", "status_500", None]
    assert len(fake.events) == 1  # "before": the failed attempts were not applied
    assert fake.stats()["faults"] == {"status_500": 2}


def test_sdk_gives_up_after_its_retries(fake: FakeCustomerIO) -> None:
    fake.fail_next(10, status=503)
    with pytest.raises(CustomerIOException, match="after 3 retries"):
        fake.client().track("u1", "paid")
    assert [r.status for r in fake.requests] == [503] * 4
    assert fake.events == []


def test_429_with_retry_after_is_retried_and_without_it_raises(fake: FakeCustomerIO, raw: Raw) -> None:
    fake.fail_next(1, status=429, retry_after=0)
    assert fake.client().track("u1", "paid").status_code == 200
    assert [r.status for r in fake.requests] == [429, 200]
    fake.fail_next(1, status=429)
    with pytest.raises(CustomerIOException, match=r"^429"):
        fake.client().track("u1", "paid")
    assert len(fake.events) == 1
    raw.fake.fail_next(1, status=429, retry_after=7)
    response = raw("PUT", "/api/v1/customers/u1", json={})
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_when_after_applies_the_state_then_fails_so_retries_duplicate(fake: FakeCustomerIO) -> None:
    fake.fail_next(1, status=500, when="after")
    fake.client().track("u1", "paid")  # no id: the retry becomes a second event
    assert [e.name for e in fake.events] == ["paid", "paid"]
    fake.fail_next(1, status=500, when="after")
    fake.client().track("u1", "refund", id="01HZX0000000000000000000CC")  # an id makes the retry harmless
    assert [e.name for e in fake.events] == ["paid", "paid", "refund"]
    assert fake.duplicate_events == 1


def test_path_prefix_limits_the_fault(fake: FakeCustomerIO) -> None:
    fake.fail_next(1, status=503, path="/api/v2/")
    cio = fake.client()
    cio.identify("u1", a=1)
    cio.batch([{"type": "person", "action": "event", "identifiers": {"id": "u1"}, "name": "x"}])
    assert [(r.path, r.status) for r in fake.requests] == [
        ("/api/v1/customers/u1", 200),
        ("/api/v2/batch", 503),
        ("/api/v2/batch", 200),
    ]


def test_reset_raises_in_the_client(http_fake: FakeCustomerIO) -> None:
    http_fake.reset_next(1)
    conn = http.client.HTTPConnection("127.0.0.1", http_fake.port, timeout=5)
    conn.request("PUT", "/api/v1/customers/u1", body=b"{}", headers={"Authorization": "Basic x"})
    with pytest.raises(ConnectionResetError):  # RST, not a clean close (which is RemoteDisconnected)
        conn.getresponse()
    conn.close()
    (request,) = http_fake.requests
    assert (request.status, request.fault) == (0, "reset")
    assert http_fake.stats()["faults"] == {"reset": 1}


def test_sdk_retries_a_reset_and_fails_after_four(fake: FakeCustomerIO) -> None:
    fake.reset_next(1)
    assert fake.client().track("u1", "x").status_code == 200
    fake.reset_next(4)
    with pytest.raises(CustomerIOException, match="after 3 retries"):
        fake.client().track("u1", "y")
    assert [e.name for e in fake.events] == ["x"]
    fake.reset_next(1, when="after")
    fake.client().track("u1", "z")
    assert [e.name for e in fake.events] == ["x", "z", "z"]


def test_stall_before_times_out_without_applying(fake: FakeCustomerIO) -> None:
    fake.stall_next(1, 5.0)
    started = time.monotonic()
    with pytest.raises(CustomerIOException, match="Read timed out"):
        fake.client(timeout=0.2, retries=0).track("u1", "x")
    assert time.monotonic() - started < 2
    assert fake.events == []
    assert fake.requests[0].fault == "stall"


def test_stall_after_applies_then_answers_late(fake: FakeCustomerIO) -> None:
    fake.stall_next(1, 0.6, when="after")
    assert fake.client(timeout=0.2, retries=1).track("u1", "x").status_code == 200
    # the timed-out first attempt was applied, the retry too: a duplicate, as in production
    assert [e.name for e in fake.events] == ["x", "x"]


def test_chaos_is_reproducible_per_seed(raw: Raw) -> None:
    def run() -> list[int]:
        raw.fake.reset()
        raw.fake.set_chaos(7, p_5xx=0.3, p_429=0.2, retry_after=2)
        return [raw("PUT", "/api/v1/customers/u1", json={}).status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert {500, 503, 429, 200} <= set(first)
    faults = raw.fake.stats()["faults"]
    assert sum(faults.values()) == sum(status != 200 for status in second)
    raw.fake.set_chaos(None)
    assert {raw("PUT", "/api/v1/customers/u1", json={}).status_code for _ in range(10)} == {200}
    with pytest.raises(ValueError, match="sum to at most 1"):
        raw.fake.set_chaos(1, p_5xx=0.8, p_429=0.5)


def test_chaos_reset_and_stall_kinds() -> None:
    with FakeCustomerIO(https=False) as fake:
        fake.set_chaos(3, p_reset=0.5, p_stall=0.5, stall_seconds=0.0)
        for _ in range(10):
            conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
            conn.request("PUT", "/api/v1/customers/u1", body=b"{}")
            with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
                conn.getresponse()
            conn.close()
        faults = fake.stats()["faults"]
    assert set(faults) == {"reset", "stall"}
    assert sum(faults.values()) == 10


def test_rate_limit_uses_the_injected_clock() -> None:
    now = [100.0]
    with FakeCustomerIO(https=False, clock=lambda: now[0]) as fake:
        raw = Raw(fake)
        fake.set_rate_limit(2, burst=3)
        statuses = [raw("PUT", "/api/v1/customers/u1", json={}) for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
        assert statuses[-1].headers["Retry-After"] == "1"
        now[0] += 0.5  # one token at 2 per second
        assert [raw("PUT", "/api/v1/customers/u1", json={}).status_code for _ in range(2)] == [200, 429]
        now[0] += 10  # refills up to the burst only
        assert [raw("PUT", "/api/v1/customers/u1", json={}).status_code for _ in range(4)] == [
            200,
            200,
            200,
            429,
        ]
        assert fake.stats()["faults"] == {"rate_limited": 4}
        assert [r.arrived_at for r in fake.requests][-1] == 110.5
        fake.set_rate_limit(None)
        assert raw("PUT", "/api/v1/customers/u1", json={}).status_code == 200


def test_latency_is_added_and_changeable(raw: Raw) -> None:
    raw.fake.latency = 0.15
    started = time.monotonic()
    raw("PUT", "/api/v1/customers/u1", json={})
    assert time.monotonic() - started >= 0.15
    raw.fake.latency = 0.0
    started = time.monotonic()
    raw("PUT", "/api/v1/customers/u1", json={})
    assert time.monotonic() - started < 0.15


def test_reset_clears_faults_and_state(raw: Raw) -> None:
    raw.fake.fail_next(5, status=500)
    raw("PUT", "/api/v1/customers/u1", json={})
    raw.fake.reset()
    assert raw.fake.requests == []
    assert raw.fake.stats()["faults_injected"] == 0
    assert raw("PUT", "/api/v1/customers/u1", json={}).status_code == 200
    assert list(raw.fake.people) == ["u1"]


def test_fault_arguments_are_validated(raw: Raw) -> None:
    with pytest.raises(ValueError, match="when"):
        raw.fake.fail_next(1, when="during")
    with pytest.raises(ValueError, match="at least 1"):
        raw.fake.reset_next(0)
    with pytest.raises(ValueError, match="status"):
        raw.fake.fail_next(1, status=99)
    with pytest.raises(ValueError, match="rps"):
        raw.fake.set_rate_limit(0)
