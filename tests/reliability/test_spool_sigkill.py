"""SIGKILL during an outage, restart at once with the endpoint on a new address: the restarted
process claims the killed owner's rows immediately (its lock died with it, no lease to wait
for), sends them to the address *it* is configured with, and everything arrives once within 10 s.

Only ``cioguard.instrument()`` with ``spool_path`` and ``track_url`` (defaults otherwise:
``spool_sync="group"``, so the test waits until the rows are committed before the kill).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from reliability_support import delivered_keys, free_port, report
from spool_helpers import drain, kill9, rows, spool_env, start_sender, wait_rows

from cioguard.testing import FakeCustomerIO

N = 4_000

pytestmark = pytest.mark.slow


def test_sigkill_during_outage_then_restart_on_a_new_address(tmp_path: Path) -> None:
    spool = str(tmp_path / "cio.spool")
    dead = f"http://127.0.0.1:{free_port()}"  # refused connections: the outage
    sender = start_sender(spool_env(spool, dead), N, "k")
    wait_rows(spool, N)
    assert kill9(sender) == -signal.SIGKILL
    with FakeCustomerIO(https=False) as fake:  # the endpoint comes back elsewhere
        began = time.monotonic()
        ok, seconds, stats = drain(spool_env(spool, fake.track_url))
        elapsed = time.monotonic() - began
        got = delivered_keys(fake)
        duplicates = fake.duplicate_events
    report(
        "spool_sigkill_outage_new_address",
        operations=N,
        delivered=len(got),
        duplicated=sum(n - 1 for n in got.values()) + duplicates,
        flush_s=seconds,
        restart_to_done_s=round(elapsed, 2),
    )
    assert ok, stats
    assert set(got) == {(f"k{i % 7}", i) for i in range(N)}
    assert set(got.values()) == {1}
    assert duplicates == 0
    assert seconds < 10.0
    assert rows(spool) == 0
    assert stats["dropped"] == dict.fromkeys(stats["dropped"], 0)
