"""Two processes in different PID namespaces on one spool (two containers sharing a volume).

Process A (this namespace) is alive during an outage of *its* endpoint: its rows wait in the
spool. Process B runs in a new PID namespace (``unshare --pid --fork``), where A's pid does not
exist, with a live endpoint: judged by pid, A looks dead and B used to take its rows. The owner
lock decides now: B takes nothing of A's and delivers only its own. Once A is killed, a third
process (again in its own namespace) claims A's rows at once and delivers each exactly once.

Without the privilege to create namespaces the test says so and simulates B's view instead:
A's owner row gets a pid that does not exist here (what B would see).
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from reliability_support import delivered_keys, free_port, report
from spool_helpers import drain, finish, kill9, rows, spool_env, start_sender, wait_rows

from cioguard.testing import FakeCustomerIO

A_EVENTS = 600
B_EVENTS = 300
UNSHARE = ("unshare", "--pid", "--fork")


def namespaces_available() -> bool:
    try:
        return subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
def test_process_in_another_pid_namespace_never_takes_a_live_owners_rows(tmp_path: Path) -> None:
    spool = str(tmp_path / "cio.spool")
    real = namespaces_available()
    prefix = UNSHARE if real else ()
    with FakeCustomerIO(https=False) as fake:
        a = start_sender(spool_env(spool, f"http://127.0.0.1:{free_port()}"), A_EVENTS, "a")
        try:
            wait_rows(spool, A_EVENTS)
            if not real:  # what a process in another namespace sees: A's pid does not exist
                conn = sqlite3.connect(spool, timeout=10)
                conn.execute("UPDATE owners SET pid = 999999999, host = 'elsewhere' WHERE pid = ?", (a.pid,))
                conn.commit()
                conn.close()
            b = start_sender(spool_env(spool, fake.track_url), B_EVENTS, "b", prefix)
            err = finish(b)  # B exits normally: its atexit flush delivers its own events
            assert b.returncode == 0, err[-2000:]
            after_b = delivered_keys(fake)
            a_rows_while_alive = rows(spool, a.pid)
        finally:
            kill9(a)
        ok, seconds, stats = drain(spool_env(spool, fake.track_url), prefix)
        got = delivered_keys(fake)
        duplicates = fake.duplicate_events
    report(
        "spool_two_pid_namespaces",
        real_namespaces=real,
        a_rows_taken_while_alive=A_EVENTS - a_rows_while_alive,
        delivered=len(got),
        duplicated=sum(n - 1 for n in got.values()) + duplicates,
        takeover_flush_s=seconds,
    )
    assert {who for who, _ in after_b} <= {f"b{i}" for i in range(7)}  # none of A's while A lived
    assert len(after_b) == B_EVENTS
    assert a_rows_while_alive == A_EVENTS
    assert ok, stats
    expected = {(f"a{i % 7}", i) for i in range(A_EVENTS)} | {(f"b{i % 7}", i) for i in range(B_EVENTS)}
    assert set(got) == expected
    assert set(got.values()) == {1}
    assert duplicates == 0
    assert rows(spool) == 0


@pytest.mark.slow
def test_a_running_process_claims_the_rows_of_one_that_dies_later(tmp_path: Path) -> None:
    spool = str(tmp_path / "cio.spool")
    with FakeCustomerIO(https=False) as fake:
        b = start_sender(spool_env(spool, fake.track_url), 10, "b")  # alive, healthy endpoint
        try:
            a = start_sender(spool_env(spool, f"http://127.0.0.1:{free_port()}"), A_EVENTS, "a")
            wait_rows(spool, A_EVENTS)
            kill9(a)
            # B notices A's death on its next check (every 2 s) and delivers A's rows itself.
            done = fake.wait_for(lambda: len(delivered_keys(fake)) >= A_EVENTS + 10, timeout=15)
            got = delivered_keys(fake)
        finally:
            finish(b)
        duplicates = fake.duplicate_events
    report("spool_claimed_while_running", delivered=len(got), duplicated=duplicates)
    assert done, len(got)
    assert set(got) == {(f"a{i % 7}", i) for i in range(A_EVENTS)} | {(f"b{i % 7}", i) for i in range(10)}
    assert set(got.values()) == {1}
    assert duplicates == 0
    assert rows(spool) == 0
