"""Chaos with the defaults: seeded faults at the emulator while 8 threads send mixed operations
(10 % anonymous events) through the real SDK, with nothing but ``cioguard.instrument(track_url=…)``.

Faults (``FakeCustomerIO.set_chaos``, re-seeded every tick by a driver thread that alternates
``when="before"`` and ``when="after"``): 30 % 5xx, 1 % 429 with ``Retry-After: 1`` plus three scripted
bursts of 429, 3 % connection resets, 3 % 2 s stalls (an ``after`` fault is a request that was
applied but answered with an error: the case that makes duplicates in real life).

No tuned option and no throttle: the threads call as fast as the SDK goes (tens of thousands of
calls/s here), so the 10 000-operation queue only holds because v2 batches drain it while the
callers run (the sender gets the GIL from callers above half full, and they pause 1-50 ms when it
is nearly full), and anonymous events (one request each) use the rest of the 100 requests/s.
``CIOGUARD_CHAOS_OPS`` scales the run (default 4 000 operations; the issue's 20 000 takes ~100 s:
``CIOGUARD_CHAOS_OPS=20000 pytest -o timeout=300 …``); ``CIOGUARD_CHAOS_RATE`` (calls/s, 0 =
full speed) exists only to compare with a paced run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from typing import Any

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry
from reliability_support import (
    SITE_ID,
    TRACK_KEY,
    delivered_keys,
    event_entries,
    id_counts,
    order_violations,
    report,
    rss_kib,
)

import cioguard
from cioguard.testing import FakeCustomerIO

THREADS = 8
OPS = int(os.environ.get("CIOGUARD_CHAOS_OPS", "4000"))
PEOPLE_PER_THREAD = 25
#: Operations per second offered by all threads together; 0 = as fast as the SDK calls go.
RATE = float(os.environ.get("CIOGUARD_CHAOS_RATE", "0"))
SEED = 20261124


class Plan:
    """What the threads sent: expected events, last identify seq and device tokens per person."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: set[tuple[str, int]] = set()
        self.identify_seq: dict[str, int] = {}
        self.devices: dict[str, set[str]] = defaultdict(set)
        self.methods: Counter[str] = Counter()


def send(cio: Any, thread: int, count: int, plan: Plan) -> None:
    """Send ``count`` mixed calls; each person belongs to this thread, so its order is defined."""
    rng = random.Random(SEED + thread)
    seqs: Counter[str] = Counter()
    local_events: list[tuple[str, int]] = []
    began = time.monotonic()
    for index in range(count):
        if RATE:
            ahead = index / (RATE / THREADS) - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
        person = f"t{thread}-p{rng.randrange(PEOPLE_PER_THREAD)}"
        draw = rng.random()
        seq = seqs[person]
        seqs[person] += 1
        if draw < 0.12:
            cio.identify(person, email=f"{person}@example.com", seq=seq)
            method = "identify"
            with plan.lock:
                plan.identify_seq[person] = seq
        elif draw < 0.50:
            cio.track(person, "chaos_event", data={"who": person, "seq": seq})
            method = "track"
            local_events.append((person, seq))
        elif draw < 0.72:
            cio.pageview(person, "/chaos", who=person, seq=seq)
            method = "pageview"
            local_events.append((person, seq))
        elif draw < 0.90:
            token = f"tok-{person}-{seq}"
            cio.add_device(person, token, "ios", seq=seq)
            method = "add_device"
            with plan.lock:
                plan.devices[person].add(token)
        else:
            anonymous = f"anon-{person}"
            cio.track_anonymous(anonymous, "anon_event", data={"who": anonymous, "seq": seq})
            method = "track_anonymous"
            local_events.append((anonymous, seq))
        with plan.lock:
            plan.methods[method] += 1
    with plan.lock:
        plan.events.update(local_events)


def drive_chaos(fake: FakeCustomerIO, stop: threading.Event) -> None:
    """Alternate before/after chaos every 0.3 s; three bursts of three 429s (ticks 3, 10, 17).

    Bursts are few on purpose: each 429 pauses the whole endpoint for ``Retry-After`` (as it
    should), so a burst every second would starve delivery rather than test it."""
    tick = 0
    while not stop.is_set():
        fake.set_chaos(
            SEED + tick,
            p_5xx=0.30,
            p_429=0.01,
            retry_after=1,
            p_reset=0.03,
            p_stall=0.03,
            stall_seconds=2.0,
            when="after" if tick % 2 else "before",
        )
        if tick in (3, 10, 17):
            fake.fail_next(3, status=429, retry_after=1)
        tick += 1
        stop.wait(0.3)
    fake.set_chaos(None)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::cioguard.PitfallWarning")  # default rules on; not the subject
def test_chaos_loses_nothing_and_duplicates_nothing(fake: FakeCustomerIO) -> None:
    cioguard.instrument(track_url=fake.track_url, registry=CollectorRegistry())  # defaults only
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    plan = Plan()
    stop = threading.Event()
    driver = threading.Thread(target=drive_chaos, args=(fake, stop), daemon=True)
    started = time.monotonic()
    driver.start()
    senders = [
        threading.Thread(target=send, args=(cio, t, OPS // THREADS, plan), daemon=True)
        for t in range(THREADS)
    ]
    try:
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(120)
        caller_seconds = time.monotonic() - started
        flushed = cioguard.flush(timeout=150)
    finally:
        stop.set()
        driver.join(5)
        stats = cioguard.stats()
        cioguard.uninstrument(timeout=5)
    duration = time.monotonic() - started
    sent_ops = sum(plan.methods.values())

    got = delivered_keys(fake)
    lost = plan.events - set(got)
    duplicated = {key: n for key, n in got.items() if n > 1}
    raw = event_entries(fake.requests)
    ids_per_key: dict[tuple[str, int], set[str | None]] = defaultdict(set)
    for entry in raw:
        if entry.key is not None:
            ids_per_key[entry.key].add(entry.event_id)
    attempts = id_counts(fake.requests)
    emulator = fake.stats()
    report(
        "chaos",
        threads=THREADS,
        operations_sent=sent_ops,
        by_method=dict(plan.methods),
        calls_per_s=round(sent_ops / max(caller_seconds, 1e-9)),
        events_expected=len(plan.events),
        events_delivered=sum(got.values()),
        duplicated=len(duplicated),
        lost=len(lost),
        dropped=stats["dropped"],
        retries=stats["retries"],
        requests=emulator["requests"],
        faults=emulator["faults"],
        emulator_deduped_resends=emulator["duplicate_events"],
        max_sends_of_one_event=max(attempts.values()),
        peak_rss_kib=rss_kib()[1],
        caller_seconds=round(caller_seconds, 2),
        duration_s=round(duration, 2),
    )

    assert flushed, stats
    assert sent_ops == OPS // THREADS * THREADS
    assert stats["accepted"] == sent_ops
    assert stats["delivered"] == sent_ops, stats
    assert sum(stats["dropped"].values()) == 0, stats
    assert not lost, sorted(lost)[:10]
    assert not duplicated, sorted(duplicated)[:10]
    assert set(got) == plan.events
    # The raw log: a resent event always carries the id of its first attempt, so the emulator's
    # dedupe (by id) is what absorbed every resend, and each event has exactly one id.
    assert all(len(ids) == 1 and None not in ids for ids in ids_per_key.values())
    assert len({e.event_id for e in raw}) == len(plan.events)
    # Every resend the emulator dropped as a duplicate is visible as a repeated id in the raw log.
    assert emulator["duplicate_events"] <= sum(n - 1 for n in attempts.values())
    assert order_violations(fake) == 0
    for person, last in plan.identify_seq.items():
        stored = fake.person(person)
        assert stored is not None
        assert stored.attributes["seq"] == last, person
    for person, tokens in plan.devices.items():
        stored = fake.person(person)
        assert stored is not None
        assert tokens <= set(stored.devices), person
    # Chaos really happened (in both modes).
    assert emulator["faults"].get("status_500", 0)
    assert emulator["faults"].get("status_429", 0)
    assert emulator["faults"].get("reset", 0)
    assert emulator["faults"].get("stall", 0)
    assert emulator["duplicate_events"] > 0  # "after" faults made the sender resend applied events
    assert stats["retries"] > 0
