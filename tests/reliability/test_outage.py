"""Outage: the emulator is stopped for 8 s under steady load, then restarted on the same port.

Memory stays bounded (RSS sampled every 0.2 s), the in-memory queue absorbs up to
``max_queue_size`` and drops beyond it are counted as ``queue_full``; with a spool, everything
beyond the queue spills to disk and nothing is dropped. After recovery everything accepted is
delivered, once. ``max_retries=100`` so the outage cannot exhaust retries (that would be a drop
reason of its own, ``expired``, tested in ``test_exit.py``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from customerio import CustomerIO
from reliability_support import SITE_ID, TRACK_KEY, delivered_keys, report, rss_kib

import cioguard
from cioguard.testing import FakeCustomerIO

OUTAGE_SECONDS = 8.0
RATE = 400  # operations per second offered by the load thread
QUEUE = 1_000
PAYLOAD = "x" * 8_000  # 8 KB per event: an unbounded queue would grow ~32 MB during the outage


def load(cio: Any, stop: threading.Event, sent: list[int]) -> None:
    """Offer RATE operations per second until stopped (bounded by count too)."""
    seq = 0
    began = time.monotonic()
    while not stop.is_set() and seq < RATE * 40:
        cio.track("steady", "outage_event", data={"who": "steady", "seq": seq, "pad": PAYLOAD})
        seq += 1
        ahead = seq / RATE - (time.monotonic() - began)
        if ahead > 0:
            stop.wait(ahead)
    sent.append(seq)


@pytest.mark.slow
@pytest.mark.parametrize("spool", [False, True])
def test_outage_is_absorbed_bounded_and_drained(instrument: Any, spool: bool, tmp_path: Path) -> None:
    first = fake = FakeCustomerIO(https=False).start()
    port = fake.port
    options: dict[str, Any] = {"track_url": fake.track_url, "max_retries": 100, "max_queue_size": QUEUE}
    if spool:
        options["spool_path"] = str(tmp_path / "cio.spool")
    instrument(**options)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    stop, sent = threading.Event(), list[int]()
    loader = threading.Thread(target=load, args=(cio, stop, sent), daemon=True)
    began = time.monotonic()
    baseline = rss_kib()[0]
    peak = baseline
    try:
        loader.start()
        time.sleep(1.0)
        fake.stop()  # the outage: connections refused
        outage_started = time.monotonic()
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            peak = max(peak, rss_kib()[0])
            time.sleep(0.2)
        during = cioguard.stats()
        fake = FakeCustomerIO(https=False, port=port).start()  # recovery, same port
        time.sleep(1.0)
    finally:
        stop.set()
        loader.join(10)
    try:
        drained = cioguard.flush(timeout=60)
        recovery = time.monotonic() - outage_started - OUTAGE_SECONDS
        stats = cioguard.stats()
        # Before the outage, the first emulator instance received some; the second the rest.
        got = delivered_keys(first) + delivered_keys(fake)
        emulator_duplicates = first.duplicate_events + fake.duplicate_events
    finally:
        fake.stop()
    offered = sent[0]
    dropped = stats["dropped"]
    report(
        f"outage_{'spool' if spool else 'memory'}",
        outage_s=OUTAGE_SECONDS,
        operations_sent=offered,
        accepted=stats["accepted"],
        delivered=stats["delivered"],
        at_emulator=sum(got.values()),
        duplicated=sum(n - 1 for n in got.values()) + emulator_duplicates,
        lost=stats["accepted"] - stats["delivered"] - sum(dropped.values()) + dropped["queue_full"],
        dropped=dropped,
        queue_during_outage=during["queue_size"],
        spilled_during_outage=during["spilled"],
        rss_growth_kib=peak - baseline,
        peak_rss_kib=peak,
        drain_after_recovery_s=round(recovery, 2),
        duration_s=round(time.monotonic() - began, 2),
    )
    assert drained, stats
    assert offered == stats["accepted"] + dropped["queue_full"]
    assert sum(dropped.values()) == dropped["queue_full"]
    assert stats["delivered"] == stats["accepted"] == sum(got.values())
    assert all(n == 1 for n in got.values())
    # Bounded: the queue never exceeds its capacity and memory does not follow the offered load
    # (the outage offered ~3 200 x 8 KB: an unbounded queue alone would be ~26 MB; the bounded
    # queue holds ~8 MB of payloads, plus request bodies, buffers and allocator slack).
    assert during["queue_size"] <= QUEUE
    offered_kib = RATE * OUTAGE_SECONDS * len(PAYLOAD) / 1024
    assert peak - baseline < 2 * QUEUE * len(PAYLOAD) / 1024 + 8 * 1024 < offered_kib
    if spool:
        assert dropped["queue_full"] == 0
        assert during["spilled"] > 0
    else:
        assert dropped["queue_full"] > 0
        assert dropped["queue_full"] >= offered - QUEUE - RATE * 3  # roughly all beyond the bound
