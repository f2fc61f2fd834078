"""``cioguard.flush()`` returning True means the delivered rows are gone from the spool.

A process that flushes and then leaves without the exit hooks (a forked child's ``os._exit``, a
SIGKILL, a serverless freeze) must not leave delivered rows behind: the next process would claim
and send them again. Found from outside: 150 ``os.fork()`` children that ``flush()`` and
``os._exit(0)`` while the parent keeps writing the spool left their rows (the parent's write
transactions delayed the group commit of the deletions past the child's exit), and 17 of 750
child events were delivered twice.

Here the file is kept busy by another connection while the requests are in flight, so the
deletions cannot be committed by the time delivery ends; the app ``os._exit``\\s as soon as
``flush()`` returns. Default options plus ``CIOGUARD_SPOOL_PATH`` and ``CIOGUARD_TRACK_URL``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from customerio import CustomerIO
from spool_helpers import spool_env

import cioguard
from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

COUNT = 50

APP = """
import os, sys, time
import cioguard
from customerio import CustomerIO
cioguard.instrument(pitfalls="off")
cio = CustomerIO("site-id", "track-key")
for i in range(int(sys.argv[1])):
    cio.track("flusher", "flushed_then_gone", data={"seq": i})
print("SENT", flush=True)
sys.stdin.readline()  # the test holds the file busy now
began = time.monotonic()
ok = cioguard.flush(10)
print("FLUSH", ok, round(time.monotonic() - began, 3), flush=True)
os._exit(0 if ok else 1)
"""


def rows(path: Path) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0])
    finally:
        conn.close()


def test_no_delivered_row_survives_a_flush_then_os_exit(tmp_path: Path) -> None:
    spool = tmp_path / "cio.spool"
    with FakeCustomerIO(https=False, latency=0.3) as fake:
        with subprocess.Popen(
            [sys.executable, "-c", APP, str(COUNT)],
            env=spool_env(str(spool), fake.track_url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as app:
            assert app.stdout is not None
            assert app.stdin is not None
            try:
                assert app.stdout.readline().startswith("SENT")
                deadline = time.monotonic() + 10
                while rows(spool) < COUNT and time.monotonic() < deadline:  # group commit (bounded)
                    time.sleep(0.01)
                assert rows(spool) == COUNT
                # Another process's long write transaction: the app's deletions must wait for it.
                busy = sqlite3.connect(spool, timeout=10, isolation_level=None, check_same_thread=False)
                busy.execute("BEGIN IMMEDIATE")
                release = threading.Timer(1.5, busy.rollback)
                release.start()
                app.stdin.write("go\n")
                app.stdin.flush()
                out, err = app.communicate(timeout=20)
                release.join()
                busy.close()
            finally:
                if app.poll() is None:
                    app.kill()
                    app.communicate(timeout=10)
        assert app.returncode == 0, (out, err[-2000:])
        line = out.strip()
        assert line.startswith("FLUSH True"), line
        assert len(fake.events) == COUNT
        assert rows(spool) == 0  # nothing the next process would send a second time


def test_flush_is_not_kept_waiting_by_calls_made_meanwhile(tmp_path: Path) -> None:
    """The barrier commits what was queued before ``flush()``: another thread that keeps calling
    (a busy web app) must not hold it until the timeout (it did: 4 s of ``flush(4)``)."""
    with FakeCustomerIO(https=False) as fake:
        cioguard.instrument(track_url=fake.track_url, spool_path=str(tmp_path / "cio.spool"), pitfalls="off")
        stop = threading.Event()

        def keep_calling() -> None:
            cio = CustomerIO("site-id", "track-key")
            for i in range(2_000_000):  # bounded; stopped long before
                if stop.is_set():
                    return
                cio.track(f"busy{i % 20}", "meanwhile", data={"seq": i})
                # A busy app still waits on I/O between calls. (A pure CPU loop that never waits
                # gets the sender only between its 5 ms switch intervals, as the sender hands the
                # GIL over every 0.1 ms: then backpressure, not this barrier, sets the pace.)
                if i % 10 == 9:
                    time.sleep(0.0005)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        try:
            time.sleep(0.5)
            took = []
            for _ in range(3):
                began = time.monotonic()
                assert cioguard.flush(4)
                took.append(time.monotonic() - began)
        finally:
            stop.set()
            caller.join(10)
            cioguard.uninstrument(timeout=10)
    assert max(took) < 2.0, took
