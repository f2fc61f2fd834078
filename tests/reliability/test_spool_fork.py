"""Fork safety of the spool: 150 ``os.fork()`` while the parent writes heavily, and gunicorn
``--preload`` workers with a spool, restarted again and again.

Before the fix the child reopened SQLite inside the at-fork hook and could inherit a lock held
by a parent thread mid-transaction: about one child in ten froze for the 30 s busy timeout. Now
the hooks touch no SQLite, a fork waits for the spool write in flight, and the child opens its
own connection on first use. Every child must write its own rows and exit quickly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import report

from cioguard.delivery.spool import Spool
from cioguard.operations.model import Endpoint, Operation

FORKS = 150
CHILD_ROWS = 20
#: A child takes a few ms (seconds on a loaded 2-core machine with fsync per row); one that
#: inherited a parent's SQLite lock fails after the busy timeout, or hangs.
CHILD_DEADLINE = 10.0
ENDPOINT = Endpoint("track", "http://127.0.0.1:9", "Basic c2l0ZTprZXk=", "track")


def op(who: str, i: int) -> Operation:
    return Operation(
        endpoint=ENDPOINT,
        method="track",
        route="v2",
        http_method="POST",
        path="/api/v2/batch",
        body=b'{"payload":"' + b"x" * 200 + b'"}',
        shard_key=who,
        op_id=f"{who}-{i}",
        event_id=f"{who}-{i}",
    )


def child(spool: Spool, index: int) -> int:
    began = time.monotonic()
    who = f"child{index}"
    for i in range(CHILD_ROWS):
        if not spool.add(op(who, i)):
            return 3
    if not spool.drain() or spool.count() != CHILD_ROWS or spool.health()["state"] != "ok":
        return 4
    if not spool.close(1.0):
        return 5
    return 0 if time.monotonic() - began < CHILD_DEADLINE else 6


def reap(children: dict[int, float], block: bool) -> list[tuple[float, int]]:
    """Finished children as (seconds, exit code); kill the ones past twice the deadline."""
    done = []
    while children:
        for pid, started in list(children.items()):
            got, status = os.waitpid(pid, os.WNOHANG)
            if got:
                done.append((time.monotonic() - started, os.waitstatus_to_exitcode(status)))
                del children[pid]
            elif time.monotonic() - started > 2 * CHILD_DEADLINE:
                os.kill(pid, signal.SIGKILL)
        if not block:
            break
        time.sleep(0.005)
    return done


@pytest.fixture
def spool_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs when we may mount one: fsync costs nothing there, so the disk load of whatever else
    runs on the machine cannot starve the children (this test is about fork, not fsync)."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    target = tmp_path / "fs"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["group", "always"])
def test_150_forks_during_heavy_spool_writes_never_hang(spool_dir: Path, sync: str) -> None:
    path = str(spool_dir / "cio.spool")
    spool = Spool(path, sync)
    stop = threading.Event()
    written = [0, 0]

    def writer(slot: int) -> None:  # the parent's senders: add, ack, spill, reload, all the time
        i = 0
        while not stop.is_set():
            batch = [op(f"parent{slot}", i + k) for k in range(20)]
            for o in batch:
                spool.add(o, in_memory=i % 3 > 0)
            spool.ack(batch[:10])
            spool.reload(5)
            if sync == "always":
                # A commit per row keeps the write lock busy; SQLite's busy wait is not fair, so
                # without a pause a child could starve past the busy timeout (not a fork issue).
                time.sleep(0.005)
            i += 20
            written[slot] = i

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(2)]
    for thread in threads:
        thread.start()
    results: list[tuple[float, int]] = []
    children: dict[int, float] = {}
    began = time.monotonic()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: intended
            for index in range(FORKS):
                started = time.monotonic()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child never returns
                    code = 7
                    try:
                        code = child(spool, index)
                    finally:
                        os._exit(code)
                children[pid] = started
                if len(children) >= 4:
                    results += reap(children, block=False)
                    time.sleep(0.002)
            results += reap(children, block=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    elapsed = time.monotonic() - began
    spool.close()
    conn = sqlite3.connect(path)
    per_child = dict(
        conn.execute("SELECT shard_key, COUNT(*) FROM ops WHERE shard_key LIKE 'child%' GROUP BY shard_key")
    )
    conn.close()
    slowest = max(seconds for seconds, _ in results)
    report(
        f"spool_fork_{sync}",
        forks=FORKS,
        children_ok=sum(1 for _, code in results if code == 0),
        slowest_child_s=round(slowest, 3),
        parent_rows_written=sum(written),
        duration_s=round(elapsed, 2),
    )
    assert len(results) == FORKS
    assert [code for _, code in results if code != 0] == []
    assert slowest < CHILD_DEADLINE
    assert sum(written) > 0
    assert len(per_child) == FORKS  # every child's spool wrote its rows...
    assert set(per_child.values()) == {CHILD_ROWS}  # ...all of them, under its own owner
