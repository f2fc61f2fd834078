"""Shared helpers of the reliability suite: reading what the emulator saw, RSS, processes, figures.

Tests import this as ``reliability_support`` (``conftest.py`` puts this folder on ``sys.path``).

Figures: every scenario calls :func:`report` with what it sent, delivered, duplicated, lost and
dropped; set ``CIOGUARD_RELIABILITY_FIGURES=/path/file.jsonl`` to collect them (one JSON line per
scenario) for the release notes. Without the variable they only go to the test's captured output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cioguard.testing import FakeCustomerIO
from cioguard.testing.records import RecordedRequest

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent

#: Credentials used by every scenario; the security scan looks for them in all output.
SITE_ID = "site-id"
TRACK_KEY = "track-key"


def report(scenario: str, **figures: Any) -> None:
    """Print the scenario's figures and append them to ``$CIOGUARD_RELIABILITY_FIGURES`` if set."""
    line = json.dumps({"scenario": scenario, **figures}, sort_keys=True, default=str)
    print(line)
    target = os.environ.get("CIOGUARD_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


# -- what the emulator received ----------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One event entry as it appeared in one raw request."""

    event_id: str | None
    key: tuple[str, int] | None  # (person or anonymous id, seq) from the event data
    status: int
    fault: str | None


def _entries(request: RecordedRequest) -> list[dict[str, Any]]:
    try:
        body = json.loads(request.body)
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    if request.path.endswith("/api/v2/batch"):
        return [e for e in body.get("batch", []) if isinstance(e, dict)]
    return [body]


def event_entries(requests: Iterable[RecordedRequest]) -> list[Sent]:
    """Every event/page entry (v2 batch entries and v1 event bodies) in the raw request log."""
    out: list[Sent] = []
    for request in requests:
        for entry in _entries(request):
            if "name" not in entry or entry.get("action") not in (None, "event", "page"):
                continue
            data = entry.get("attributes") if "action" in entry else entry.get("data")
            key = None
            if isinstance(data, dict) and "who" in data and "seq" in data:
                key = (str(data["who"]), int(data["seq"]))
            out.append(Sent(entry.get("id"), key, request.status, request.fault))
    return out


def id_counts(requests: Iterable[RecordedRequest]) -> Counter[str]:
    """How many times each event id appears across all raw request bodies (retries included)."""
    return Counter(s.event_id for s in event_entries(requests) if s.event_id is not None)


def delivered_once_by_id(*fakes: FakeCustomerIO) -> Counter[tuple[str, int]]:
    """(who, seq) -> how many *distinct event ids* it was accepted under, across emulator instances.

    Each instance dedupes by id on its own. When an outage test stops one instance mid-request, a
    batch it applied may never be answered: the sender resends it, same ids, to the next instance,
    which cannot know. Customer.io is one backend and drops that resend by id, so an event counts
    once per distinct id; two ids for one (who, seq) is a real duplicate.
    """
    ids: dict[tuple[str, int], set[str | None]] = {}
    for fake in fakes:
        for event in fake.events:
            if "who" in event.data and "seq" in event.data:
                ids.setdefault((str(event.data["who"]), int(event.data["seq"])), set()).add(event.id)
    return Counter({key: len(found) for key, found in ids.items()})


def delivered_keys(fake: FakeCustomerIO) -> Counter[tuple[str, int]]:
    """(who, seq) of every event the emulator accepted (after its dedupe by id)."""
    keys: Counter[tuple[str, int]] = Counter()
    for event in fake.events:
        if "who" in event.data and "seq" in event.data:
            keys[(str(event.data["who"]), int(event.data["seq"]))] += 1
    return keys


def order_violations(fake: FakeCustomerIO) -> int:
    """Events whose seq is lower than an earlier accepted event of the same person/anonymous id."""
    last: dict[str, int] = {}
    bad = 0
    for event in fake.events:
        if "who" not in event.data:
            continue
        who, seq = str(event.data["who"]), int(event.data["seq"])
        if seq < last.get(who, -1):
            bad += 1
        last[who] = max(seq, last.get(who, -1))
    return bad


# -- processes ----------------------------------------------------------------------------------


def rss_kib(pid: int | None = None) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in KiB, from ``/proc/<pid>/status``."""
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def child_env(track_url: str, **options: str) -> dict[str, str]:
    """The environment for an app subprocess: no inherited CIOGUARD_*/PROMETHEUS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIOGUARD_", "PROMETHEUS_"))}
    env.update(
        CIOGUARD_TRACK_URL=track_url,
        CIOGUARD_PITFALLS="off",
        CIOGUARD_FLUSH_INTERVAL="0.05",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(APPS),
    )
    env.update(options)
    return env


def wait_line(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """Read the child's stdout until a line starts with ``marker``; the lines read so far."""
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


def json_line(lines: Iterable[str], marker: str) -> Mapping[str, Any]:
    """The JSON document after ``marker`` on the last line that starts with it."""
    found = [line for line in lines if line.startswith(marker)]
    assert found, f"no {marker!r} line in {list(lines)}"
    value: Mapping[str, Any] = json.loads(found[-1][len(marker) :])
    return value
