"""Spool faults never raise and never lose silently: corrupt, read-only, deleted, full.

Disk full is a real ``SQLITE_FULL`` (``PRAGMA max_page_count`` caps the file) so it runs without
root; the app-level version on a small tmpfs is in ``tests/reliability/test_spool_faults.py``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spool_support import SpoolErrors, make_op

from cioguard.delivery.spool import Spool
from cioguard.delivery.spool_store import open_db


def count_rows(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def readonly_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write: a read-only tmpfs as root, else chmod 0500."""
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)], check=True)
        (target / "cio.spool").write_bytes(b"")
        os.unlink(target / "cio.spool")
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        try:
            yield target
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
    else:
        target.chmod(0o500)
        try:
            yield target
        finally:
            target.chmod(0o700)


def test_corrupt_file_is_moved_aside_and_a_new_one_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cio.spool"
    junk = b"this is not a database\n" * 200
    path.write_bytes(junk)
    errors = SpoolErrors()
    with caplog.at_level(logging.ERROR, logger="cioguard.delivery"):
        spool = Spool(str(path), "always", recorder=errors)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("cio.spool.corrupt-")]
    assert len(aside) == 1
    assert aside[0].read_bytes() == junk
    assert errors.kinds == ["corrupt"]
    assert spool.health()["errors"] == {"corrupt": 1}
    assert spool.add(make_op(1))
    assert count_rows(str(path)) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert str(path) in lines[0]
    assert "Fix:" in lines[0]
    spool.close()


def test_read_only_location_keeps_the_app_running_in_memory(readonly_dir: Path) -> None:
    errors = SpoolErrors()
    spool = Spool(str(readonly_dir / "cio.spool"), "group", recorder=errors)
    assert spool.add(make_op(1)) is False  # the engine keeps it in memory
    assert spool.add(make_op(2), in_memory=False) is False
    assert spool.recover(10) == ([], 0)
    assert spool.reload(10) == []
    assert spool.health()["state"] == "read_only"
    assert errors.kinds == ["read_only"]
    assert spool.take_losses() == {}
    assert spool.close()


def test_deleted_file_is_recreated_with_this_process_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "cio.spool")
    errors = SpoolErrors()
    spool = Spool(path, "group", recorder=errors)
    for i in range(5):
        spool.add(make_op(i))
    for i in range(5, 8):
        spool.add(make_op(i), in_memory=False)
    assert spool.drain()
    for name in os.listdir(tmp_path):  # rm -rf cio.spool*
        target = tmp_path / name
        subprocess.run(["rm", "-rf", str(target)], check=True)
    spool._maintain()  # what the writer does every HEARTBEAT_SECONDS
    assert errors.kinds == ["deleted"]
    assert count_rows(path) == 8
    assert spool.add(make_op(9))
    assert spool.drain()
    assert count_rows(path) == 9
    assert [op.op_id for op in spool.reload(10)] == [f"p-{i:06d}" for i in range(5, 8)]
    assert spool.health()["state"] == "ok"
    assert spool.close()


def small_disk(max_pages: int) -> Callable[[str, str], sqlite3.Connection]:
    def connect(path: str, sync: str) -> sqlite3.Connection:
        conn = open_db(path, sync)
        conn.execute(f"PRAGMA max_page_count = {max_pages}").fetchall()
        return conn

    return connect


def test_full_disk_keeps_spilled_operations_in_memory_and_counts(tmp_path: Path) -> None:
    path = str(tmp_path / "cio.spool")
    errors = SpoolErrors()
    spool = Spool(path, "group", recorder=errors, connect=small_disk(40))
    accepted = []
    for i in range(400):
        op = make_op(i, size=1000)
        if spool.add(op, in_memory=False):
            accepted.append(op.op_id)
        if i % 20 == 19:
            spool.drain()
    spool.drain()
    assert errors.kinds == ["disk_full"]
    assert spool.health()["state"] == "disk_full"
    assert len(accepted) < 400  # refused once the fault was known: the engine keeps those in memory
    assert spool.count() == len(accepted)
    back = spool.reload(1000)
    assert sorted(op.op_id for op in back) == sorted(accepted)  # on disk or held in memory
    assert spool.take_losses() == {}
    spool._maintain()  # a heartbeat fits in the file's pages: still failing, no flapping
    assert spool.health()["state"] == "disk_full"
    assert spool.ack(back)
    assert spool.drain()
    spool._maintain()  # the probe writes real data
    assert spool.health()["state"] == "ok"
    assert spool.add(make_op(1000, size=1000), in_memory=False)
    assert spool.drain()
    assert errors.kinds == ["disk_full"]
    assert spool.close()


def test_unreadable_rows_are_removed_counted_and_the_rest_delivered(tmp_path: Path) -> None:
    path = str(tmp_path / "cio.spool")
    errors = SpoolErrors()
    spool = Spool(path, "always", recorder=errors)
    for i in range(3):
        spool.add(make_op(i), in_memory=False)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ops SET body = 'text, not bytes' WHERE op_id = 'p-000001'")
    conn.commit()
    conn.close()
    assert [op.op_id for op in spool.reload(10)] == ["p-000000", "p-000002"]
    assert spool.take_losses() == {"spool_error": 1}
    assert errors.kinds == ["corrupt"]
    assert spool.health()["state"] == "ok"
    assert spool.add(make_op(9))
    assert count_rows(path) == 3
    spool.close()
