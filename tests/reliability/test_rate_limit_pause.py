"""While Customer.io's ``Retry-After`` pause runs, nothing drains: callers are not slowed for it.

Backpressure (a 1-50 ms pause from 7/8 full) exists so the sender can catch up; during a 429
pause it cannot, so a pause would only slow the app (p99 37 ms per ``track()`` was measured with a
20 s ``Retry-After``). Real SDK, real HTTP, ``instrument()``'s defaults; the pause function is
recorded instead of slept, so the test needs no timing.
"""

from __future__ import annotations

import time

import pytest
from customerio import CustomerIO

import cioguard
from cioguard.delivery import backpressure
from cioguard.testing import FakeCustomerIO

BURST = 9_500  # past 7/8 of the default max_queue_size (10 000): where callers would pause


def test_callers_do_not_pause_while_the_endpoint_waits_out_a_429(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(backpressure, "_pause", pauses.append)
    fake.fail_next(1, status=429, retry_after=3)
    cioguard.instrument(track_url=fake.url)
    try:
        cio = CustomerIO("site-id", "track-key")
        cio.identify("p1", email="p1@example.com")
        assert cioguard.flush(timeout=0.5) is False  # answered 429: the pause runs
        assert cioguard.stats()["rate_limited"] >= 1
        for seq in range(BURST):
            cio.track("p1", "burst", data={"seq": seq})
        assert cioguard.stats()["queue_size"] > BURST * 0.9  # nothing drained meanwhile
        assert [delay for delay in pauses if delay > 0] == []  # GIL hand-offs only (0.0)
        began = time.monotonic()
        assert cioguard.flush(timeout=20) is True
        assert time.monotonic() - began < 20
    finally:
        cioguard.uninstrument(timeout=5)
    assert len(fake.events) == BURST
