"""Spool faults under a real app (``cioguard.instrument()`` through the SDK, real HTTP): a corrupt
file, a read-only location, a full disk (a small tmpfs) and a file deleted while running never
stop the app or raise; every loss is counted; ``flush()`` tells the truth; the fault is in
``stats()`` and ``customerio_spool_errors_total``.

Options besides ``track_url``/``spool_path``: ``pitfalls="off"`` (no warnings under
filterwarnings=error) and a private ``registry`` (to read the metric); nothing tuned.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry
from reliability_support import SITE_ID, TRACK_KEY, delivered_keys, report

import cioguard
from cioguard.testing import FakeCustomerIO


@pytest.fixture
def app() -> Iterator[Any]:
    registry = CollectorRegistry()

    def start(**options: Any) -> CollectorRegistry:
        cioguard.instrument(pitfalls="off", registry=registry, **options)
        return registry

    yield start
    cioguard.uninstrument(timeout=5)


def spool_errors(registry: CollectorRegistry, kind: str) -> float:
    return registry.get_sample_value("customerio_spool_errors_total", {"kind": kind}) or 0.0


def send(count: int, who: str = "f") -> None:
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    for i in range(count):
        cio.track(f"{who}{i % 5}", "fault_event", data={"who": f"{who}{i % 5}", "seq": i})


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path, "600k") as target:
        yield target


@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted under ``tmp_path`` (unmounted after)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected SQLITE_FULL test covers the logic)")
    target = tmp_path / "small"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_corrupt_spool_is_moved_aside_and_the_app_delivers(
    app: Any, fake: FakeCustomerIO, tmp_path: Path
) -> None:
    path = tmp_path / "cio.spool"
    path.write_bytes(b"definitely not SQLite " * 100)
    registry = app(track_url=fake.track_url, spool_path=str(path))
    send(200)
    assert cioguard.flush(timeout=20)
    assert len(delivered_keys(fake)) == 200
    assert any(p.name.startswith("cio.spool.corrupt-") for p in tmp_path.iterdir())
    assert cioguard.stats()["spool"]["errors"] == {"corrupt": 1}
    assert spool_errors(registry, "corrupt") == 1


def test_read_only_location_runs_from_memory(app: Any, fake: FakeCustomerIO, tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(target)], check=True)
    else:
        target.chmod(0o500)
    try:
        registry = app(track_url=fake.track_url, spool_path=str(target / "cio.spool"))
        send(200)
        assert cioguard.flush(timeout=20)
        assert len(delivered_keys(fake)) == 200
        stats = cioguard.stats()
        assert stats["spool"]["state"] == "read_only"
        assert spool_errors(registry, "read_only") == 1
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(target)], check=False)
        else:
            target.chmod(0o700)


def test_file_deleted_while_running_is_recreated(app: Any, fake: FakeCustomerIO, tmp_path: Path) -> None:
    path = tmp_path / "cio.spool"
    fake.fail_next(10**6, 503)  # an outage: rows stay in the spool
    registry = app(track_url=fake.track_url, spool_path=str(path))
    send(300)
    for name in os.listdir(tmp_path):
        subprocess.run(["rm", "-rf", str(tmp_path / name)], check=True)
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the spool checks its file every heartbeat (2 s)
    assert path.exists(), "the spool file was not recreated"
    # The file appears first; the rows go in and the fault is reported right after (same thread).
    assert fake.wait_for(lambda: spool_errors(registry, "deleted") == 1, timeout=5)
    assert cioguard.stats()["spool_size"] == 300
    fake.reset()  # the endpoint is back
    send(100, "g")
    assert cioguard.flush(timeout=30)
    assert len(delivered_keys(fake)) == 400
    # Acks reach the file by group commit, shortly after flush() saw the deliveries.
    assert fake.wait_for(lambda: cioguard.stats()["spool_size"] == 0, timeout=10)


@pytest.mark.slow
def test_full_disk_during_an_outage_counts_every_loss(app: Any, fake: FakeCustomerIO, tmpfs: Path) -> None:
    total = 20_000
    fake.fail_next(10**6, 503)
    registry = app(track_url=fake.track_url, spool_path=str(tmpfs / "cio.spool"))
    began = time.monotonic()
    send(total)
    assert cioguard.flush(timeout=1) is False  # nothing could be delivered, and some was lost
    stats = cioguard.stats()
    dropped = {reason: n for reason, n in stats["dropped"].items() if n}
    fake.reset()  # the endpoint is back
    assert cioguard.flush(timeout=60)  # nothing dropped since the last flush
    got = delivered_keys(fake)
    report(
        "spool_full_tmpfs_outage",
        operations=total,
        accepted=stats["accepted"],
        dropped=dropped,
        delivered=len(got),
        duplicated=sum(n - 1 for n in got.values()),
        duration_s=round(time.monotonic() - began, 2),
    )
    assert stats["spool"]["errors"].get("disk_full", 0) >= 1
    assert spool_errors(registry, "disk_full") >= 1
    assert set(dropped) <= {"spool_error", "queue_full"}
    assert stats["accepted"] == total  # every call accounted for: delivered or dropped (counted)
    assert len(got) == total - sum(dropped.values())  # the rest delivered...
    assert set(got.values()) == {1}  # ...once


@pytest.fixture
def tmpfs_16m(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB disk: the spool's 2 MiB reserve (spool_space.ROOM_BYTES), the 8 MiB it leaves free
    (LOW_SPACE_BYTES) and 6 MiB to fill."""
    with small_disk(tmp_path, "16m") as target:
        yield target


@pytest.mark.slow
def test_full_disk_leaves_no_delivered_rows_for_the_next_process(
    app: Any, fake: FakeCustomerIO, tmpfs_16m: Path
) -> None:
    """The spool fills the disk during the outage; once the endpoint is back, the rows of what was
    delivered must leave the file, or the next process opening the spool sends them again
    (``identify`` has no id to dedupe: an older profile would overwrite a newer one). The deletions
    need log space on a full disk: the spool's reserve gives it."""
    total = 30_000
    path = tmpfs_16m / "cio.spool"
    fake.fail_next(10**6, 503)
    app(track_url=fake.track_url, spool_path=str(path))
    send(total)
    assert cioguard.flush(timeout=1) is False
    stats = cioguard.stats()
    assert stats["spool"]["errors"].get("disk_full", 0) >= 1
    dropped = sum(stats["dropped"].values())  # past the memory queue: counted (spool_error)
    fake.reset()
    assert cioguard.flush(timeout=60)
    cioguard.uninstrument(timeout=10)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        left = conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0]
    got = delivered_keys(fake)
    report(
        "spool_full_tmpfs_rows_left", operations=total, delivered=len(got), dropped=dropped, rows_left=left
    )
    assert len(got) == total - dropped
    assert set(got.values()) == {1}
    assert left == 0
