"""Processes of the spool reliability tests: an app that sends with a spool, one that drains it.

Apps run with only ``cioguard.instrument()`` and ``CIOGUARD_SPOOL_PATH`` + ``CIOGUARD_TRACK_URL``
(nothing tuned). ``prefix`` runs them under a wrapper, e.g. ``unshare --pid --fork``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import Any

from reliability_support import APPS

SPOOL_APP = str(APPS / "spool_app.py")


def spool_env(spool_path: str, track_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIOGUARD_", "PROMETHEUS_"))}
    env.update(CIOGUARD_SPOOL_PATH=spool_path, CIOGUARD_TRACK_URL=track_url, PYTHONUNBUFFERED="1")
    return env


def start_sender(
    env: dict[str, str], count: int, who: str, prefix: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """Start ``spool_app.py send``; returns once it printed ``SENT`` (all calls accepted)."""
    process = subprocess.Popen(
        [*prefix, sys.executable, SPOOL_APP, "send", str(count), who],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("SENT"):
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"sender failed: {line!r} {err[-2000:]}")
    return process


def finish(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """Close the sender's stdin (it exits normally) and return its stderr."""
    try:
        _, err = process.communicate(timeout=timeout)
    finally:
        process.kill()
        process.wait(10)
    return err


def kill9(process: subprocess.Popen[str]) -> int:
    """SIGKILL the process, reap it and close its pipes; its return code."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    return process.returncode


def rows(path: str, owner_pid: int | None = None) -> int:
    conn = sqlite3.connect(path, timeout=10)
    try:
        if owner_pid is None:
            return int(conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0])
        return int(
            conn.execute("SELECT COUNT(*) FROM ops WHERE owner LIKE ?", (f"{owner_pid}:%",)).fetchone()[0]
        )
    finally:
        conn.close()


def wait_rows(path: str, count: int, timeout: float = 10.0) -> None:
    """Wait until the spool file holds at least ``count`` rows (group commit is asynchronous)."""
    deadline = time.monotonic() + timeout
    while rows(path) < count:
        assert time.monotonic() < deadline, f"spool has {rows(path)} rows, expected {count}"
        time.sleep(0.05)


def drain(
    env: dict[str, str], prefix: tuple[str, ...] = (), timeout: float = 60
) -> tuple[bool, float, dict[str, Any]]:
    """Run ``spool_app.py drain``: (flush result, seconds from start to flushed, stats)."""
    done = subprocess.run(
        [*prefix, sys.executable, SPOOL_APP, "drain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("DRAINED ")]
    assert lines, f"drain failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-2000:]}"
    _, ok, seconds, stats = lines[-1].split(" ", 3)
    return ok == "True", float(seconds), json.loads(stats)
