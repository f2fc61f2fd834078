"""Fork safety in-process: ``os.fork`` and multiprocessing ``fork`` children of an instrumented
parent whose queue is still full. Every process's events arrive, and no child resends the parent's.

(gunicorn with ``preload_app`` and 4 workers is in ``test_gunicorn.py``.)
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from typing import Any

import pytest
from customerio import CustomerIO
from reliability_support import SITE_ID, TRACK_KEY, delivered_keys, id_counts, report

import cioguard
from cioguard.testing import FakeCustomerIO

PARENT_EVENTS = 200
CHILD_EVENTS = 300
CHILDREN = 3


def send(who: str, count: int) -> None:
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    for seq in range(count):
        cio.track(who, "fork_event", data={"who": who, "seq": seq})


def child_work(who: str) -> None:
    """In the child: send our own events and deliver them; the exit code says whether it worked."""
    send(who, CHILD_EVENTS)
    ok = cioguard.flush(timeout=20) and cioguard.stats()["delivered"] == CHILD_EVENTS
    os._exit(0 if ok else 3)


def fork_children() -> list[int]:
    pids = []
    with warnings.catch_warnings():
        # Python >= 3.12 warns about fork() in a process with threads (the emulator's): intended.
        warnings.simplefilter("ignore", DeprecationWarning)
        for index in range(CHILDREN):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child never returns
                try:
                    child_work(f"child-{index}")
                finally:
                    os._exit(4)
            pids.append(pid)
    return [os.waitpid(pid, 0)[1] for pid in pids]


def multiprocessing_children() -> list[int]:
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        processes = [context.Process(target=child_work, args=(f"child-{i}",)) for i in range(CHILDREN)]
        for process in processes:
            process.start()
    for process in processes:
        process.join(60)
    return [process.exitcode if process.exitcode is not None else -1 for process in processes]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_children_deliver_their_own_and_never_the_parents(
    fake: FakeCustomerIO, instrument: Any, how: str
) -> None:
    # The parent's events wait in its queue (long flush interval) while the children are forked.
    instrument(track_url=fake.track_url, flush_interval=30.0)
    began = time.monotonic()
    send("parent", PARENT_EVENTS)
    assert cioguard.stats()["queue_size"] == PARENT_EVENTS
    codes = fork_children() if how == "os.fork" else multiprocessing_children()
    assert cioguard.flush(timeout=20)
    got = delivered_keys(fake)
    sends = id_counts(fake.requests)
    report(
        f"fork_{how}",
        processes=CHILDREN + 1,
        operations_sent=PARENT_EVENTS + CHILDREN * CHILD_EVENTS,
        delivered=sum(got.values()),
        duplicated=sum(n - 1 for n in got.values()),
        resent_ids=sum(1 for n in sends.values() if n > 1),
        duration_s=round(time.monotonic() - began, 2),
    )
    assert codes == [0] * CHILDREN
    expected = {("parent", i) for i in range(PARENT_EVENTS)}
    expected |= {(f"child-{c}", i) for c in range(CHILDREN) for i in range(CHILD_EVENTS)}
    assert set(got) == expected
    assert all(n == 1 for n in got.values())
    # No child resent the parent's items: every event id went over the wire exactly once.
    assert max(sends.values()) == 1
    assert fake.duplicate_events == 0
    assert cioguard.stats()["delivered"] == PARENT_EVENTS
