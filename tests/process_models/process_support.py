"""Helpers of the process-model tests: child environments, reading child output, what arrived.

Tests import this as ``process_support`` (``conftest.py`` puts this folder on ``sys.path``). Apps in
``apps/`` read only ``CIOGUARD_TRACK_URL``: every other option keeps its default.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from cioguard.testing import FakeCustomerIO

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
BIN = Path(sys.executable).parent


def child_env(track_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process: the emulator's URL, default options otherwise."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CIOGUARD_", "PROMETHEUS_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        CIOGUARD_TRACK_URL=track_url,
        CIOGUARD_PITFALLS="off",  # the apps' synthetic ids would trip CIO003; not what is tested
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(APPS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def run_app(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run an app to completion (bounded), output captured."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=APPS)


def wait_line(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """Read the child's stdout until a line starts with ``marker``; the lines read so far.

    ``readline`` blocks, so the bound holds only for children that print regularly or exit; each
    caller also kills the child in a ``finally``.
    """
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith(marker):
            return lines
    raise AssertionError(f"no {marker!r} line within {timeout} s; got {lines}")


def delivered_keys(fake: FakeCustomerIO) -> Counter[tuple[str, int]]:
    """(who, seq) of every event the emulator accepted (after its dedupe by event id)."""
    keys: Counter[tuple[str, int]] = Counter()
    for event in fake.events:
        if "who" in event.data and "seq" in event.data:
            keys[(str(event.data["who"]), int(event.data["seq"]))] += 1
    return keys


def expected_keys(workers: int, per_worker: int) -> set[tuple[str, int]]:
    """What apps that send ``per_worker`` events from each of ``workers`` units of work send."""
    return {(f"w{w}", w * per_worker + i) for w in range(workers) for i in range(per_worker)}


def wait_delivered(fake: FakeCustomerIO, count: int, timeout: float) -> bool:
    """True once the emulator holds ``count`` events (bounded)."""
    return fake.wait_for(lambda: len(fake.events) >= count, timeout=timeout)


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
