"""``stats()`` accounts for every call at every moment: accepted == delivered + dropped + queued.

A monitoring script computes "lost = accepted - delivered - dropped - queue_size" while traffic
runs; the operations of a request that had just been answered were in no column for a moment
(up to two 2 000-operation batches), and calls refused at the door were dropped but never
accepted. Real SDK, real HTTP, ``instrument()``'s defaults; ``stats()`` polled during the load.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from customerio import CustomerIO

import cioguard
from cioguard.testing import FakeCustomerIO

PER_THREAD = 6_000
SAMPLES_MAX = 20_000
SECONDS_MAX = 30.0


def _gap(stats: dict[str, Any]) -> int:
    """Calls in no column (positive) or in two (negative)."""
    lost: int = stats["accepted"] - stats["delivered"] - sum(stats["dropped"].values())
    return lost - int(stats["queue_size"])


@pytest.mark.filterwarnings("ignore::cioguard.PitfallWarning")  # (CIO014 for the oversize calls)
@pytest.mark.parametrize("oversize", [False, True], ids=["ordinary", "every-other-call-oversize"])
def test_every_call_is_in_one_column_while_traffic_runs(fake: FakeCustomerIO, oversize: bool) -> None:
    cioguard.instrument(track_url=fake.url)
    per_thread = PER_THREAD // 6 if oversize else PER_THREAD
    big = "x" * 600_000  # over every Customer.io limit: refused at the caller, counted as dropped
    try:
        cio = CustomerIO("site-id", "track-key")
        for person in range(8):
            cio.identify(f"p{person}", email=f"p{person}@example.com")

        def produce(worker: int) -> None:
            for seq in range(per_thread):
                data = {"seq": seq, "note": big} if oversize and seq % 2 else {"seq": seq}
                cio.track(f"p{worker * 4 + seq % 4}", "load", data=data)

        producers = [threading.Thread(target=produce, args=(w,)) for w in range(2)]
        for thread in producers:
            thread.start()
        gaps: list[int] = []
        deadline = time.monotonic() + SECONDS_MAX
        while any(t.is_alive() for t in producers) and len(gaps) < SAMPLES_MAX:
            assert time.monotonic() < deadline
            gaps.append(_gap(cioguard.stats()))
        for thread in producers:
            thread.join(SECONDS_MAX)
        assert cioguard.flush(timeout=30) is (not oversize)  # False: calls were dropped
        final = cioguard.stats()
    finally:
        cioguard.uninstrument(timeout=5)
    assert final["accepted"] == 8 + 2 * per_thread
    assert final["delivered"] == 8 + 2 * per_thread - sum(final["dropped"].values())
    assert len(gaps) > 100
    assert [gap for gap in gaps if gap != 0] == []


def test_a_call_refused_after_shutdown_is_accepted_and_dropped(fake: FakeCustomerIO) -> None:
    cioguard.instrument(track_url=fake.url)
    try:
        cio = CustomerIO("site-id", "track-key")
        cio.identify("p1", email="p1@example.com")
        cioguard.shutdown(timeout=5)
        cio.track("p1", "too_late")
        stats = cioguard.stats()
    finally:
        cioguard.uninstrument(timeout=5)
    assert (stats["accepted"], stats["delivered"], stats["dropped"]["shutdown"]) == (2, 1, 1)
    assert _gap(stats) == 0
