"""``cioguard replay SPOOL`` as a user runs it (the real command, real processes): toward a dead
endpoint it keeps every row and says how many remain (exit 1); toward a live one it delivers
each row exactly once (exit 0); ``--inspect`` explains its columns; a corrupt, non-SQLite or
missing file is a one-line error (exit 2)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from reliability_support import BIN, delivered_keys, free_port, report
from spool_helpers import kill9, rows, spool_env, start_sender, wait_rows

from cioguard.testing import FakeCustomerIO

N = 500


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "cioguard"), "replay", *args], capture_output=True, text=True, timeout=120
    )


def left_by_a_crash(tmp_path: Path) -> str:
    """A spool holding N rows of a process killed during an outage."""
    spool = str(tmp_path / "cio.spool")
    sender = start_sender(spool_env(spool, f"http://127.0.0.1:{free_port()}"), N, "r")
    wait_rows(spool, N)
    kill9(sender)
    return spool


@pytest.mark.slow
def test_replay_keeps_what_it_cannot_deliver_then_delivers_each_once(tmp_path: Path) -> None:
    spool = left_by_a_crash(tmp_path)
    inspect = replay(spool, "--inspect")
    assert inspect.returncode == 0, inspect.stderr
    lines = inspect.stdout.splitlines()
    assert lines[0].split()[:3] == ["OWNER", "STATE", "API"]
    assert " dead " in lines[1]
    assert f"total: {N} operation(s)" in inspect.stdout
    assert "columns:" in inspect.stdout

    began = time.monotonic()
    dead = replay(spool, "--track-url", f"http://127.0.0.1:{free_port()}", "--timeout", "4")
    took = time.monotonic() - began
    assert dead.returncode == 1, dead.stdout + dead.stderr
    # --timeout bounds the whole run (it used to try as long again in the shutdown: 8 s + start).
    assert took < 7.0, took
    assert f"{N} rows remain" in dead.stdout
    assert rows(spool) == N  # nothing deleted for a transient failure

    with FakeCustomerIO(https=False) as fake:
        live = replay(spool, "--track-url", fake.track_url, "--timeout", "30")
        got = delivered_keys(fake)
        duplicates = fake.duplicate_events
    report("spool_replay_dead_then_live", rows=N, delivered=len(got), duplicated=duplicates)
    assert live.returncode == 0, live.stdout + live.stderr
    assert "0 rows remain" in live.stdout
    assert set(got) == {(f"r{i % 7}", i) for i in range(N)}
    assert set(got.values()) == {1}
    assert duplicates == 0
    assert rows(spool) == 0


def test_replay_rejects_corrupt_foreign_and_missing_files_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a spool\n" * 50)
    truncated = tmp_path / "truncated.spool"
    conn = sqlite3.connect(tmp_path / "real.spool")
    conn.execute("CREATE TABLE ops (x)")
    conn.executemany("INSERT INTO ops VALUES (?)", [(b"x" * 3000,)] * 20)
    conn.commit()
    conn.close()
    shutil.copy(tmp_path / "real.spool", truncated)
    with open(truncated, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 2000)  # header and first pages destroyed
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # an SQLite file, but no spool tables
    for path in (text, truncated, other, tmp_path / "missing.spool"):
        for args in ((str(path),), (str(path), "--inspect")):
            done = replay(*args)
            assert done.returncode == 2, (path, done.stdout, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert done.stderr.startswith("cioguard replay: ")
            assert done.stdout == ""
    assert text.read_text() == "not a spool\n" * 50  # never modified


@pytest.mark.slow
def test_replay_says_how_many_rows_running_processes_keep(tmp_path: Path) -> None:
    """Rows of a live process are left to it, and the summary says so (it said "0 rows remain"
    with exit 0 while the file held them, which reads as "the spool is empty")."""
    spool = str(tmp_path / "cio.spool")
    sender = start_sender(spool_env(spool, f"http://127.0.0.1:{free_port()}"), N, "live")
    try:
        wait_rows(spool, N)
        with FakeCustomerIO(https=False) as fake:
            done = replay(spool, "--track-url", fake.track_url, "--timeout", "3")
            delivered = len(fake.events)
    finally:
        kill9(sender)
    assert delivered == 0  # never taken from a running owner
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 rows remain" in done.stdout
    assert f"{N} rows belong to running processes, which deliver them" in done.stdout
    assert rows(spool) == N
