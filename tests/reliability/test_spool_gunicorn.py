"""gunicorn ``--preload`` with 4 workers and a spool, restarted again and again (``HUP``) while
the master keeps sending: no worker freezes (every request answers within seconds; gunicorn
logs no worker timeout), every worker's spool works, and every event arrives exactly once
(what a worker left at exit waits in the spool and is claimed by a live process or, at the end,
the drain).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import APPS, BIN, delivered_keys, free_port, report
from spool_helpers import drain, spool_env

from cioguard.testing import FakeCustomerIO

RESTARTS = 6
REQUESTS = 32

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    argv = [str(BIN / "gunicorn"), "-c", str(APPS / "spool_gunicorn_conf.py"), "--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=APPS)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def worker_pids(url: str, deadline: float, exclude: set[int]) -> set[int]:
    """Poll /stats until answers come only from workers not in ``exclude`` (new generation)."""
    seen: set[int] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            document = httpx.get(f"{url}/stats", timeout=2).json()
            assert document["spool"]["state"] == "ok", document
            if document["pid"] not in exclude:
                seen.add(document["pid"])
                if len(seen) >= 2:
                    return seen
        time.sleep(0.05)
    raise AssertionError(f"workers did not come up: {seen}")


def test_gunicorn_preload_with_a_spool_restarted_repeatedly(fake: FakeCustomerIO, tmp_path: Path) -> None:
    port, spool, log = free_port(), str(tmp_path / "cio.spool"), tmp_path / "gunicorn.log"
    env = spool_env(spool, fake.track_url)
    url = f"http://127.0.0.1:{port}"
    expected: set[tuple[str, int]] = set()
    latencies: list[float] = []
    generations: list[set[int]] = []
    began = time.monotonic()

    def hit(_: int) -> dict[str, Any]:
        started = time.monotonic()
        answer: dict[str, Any] = httpx.get(f"{url}/send", params={"n": 10}, timeout=5).json()
        latencies.append(time.monotonic() - started)
        return answer

    with gunicorn(env, port, log) as process:
        old: set[int] = set()
        for restart in range(RESTARTS + 1):
            if restart:
                process.send_signal(signal.SIGHUP)  # re-fork every worker from the sending master
            generations.append(worker_pids(url, time.monotonic() + 20, old))
            old |= generations[-1]
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(hit, range(REQUESTS)))
            expected |= {(a["who"], s) for a in answers for s in range(a["seqs"][0], a["seqs"][1] + 1)}
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    ok, _, stats = drain(env)  # whatever a worker left in the spool
    got = delivered_keys(fake)
    workers = {(who, seq) for who, seq in got if who != "master"}
    text = log.read_text()
    report(
        "spool_gunicorn_preload_restarts",
        restarts=RESTARTS,
        worker_generations=[sorted(g) for g in generations],
        slowest_request_s=round(max(latencies), 3),
        worker_events=len(expected),
        master_events_delivered=sum(1 for who, _ in got if who == "master"),
        duplicated=sum(n - 1 for n in got.values()) + fake.duplicate_events,
        duration_s=round(time.monotonic() - began, 2),
    )
    assert "WORKER TIMEOUT" not in text, text[-3000:]
    assert max(latencies) < 5.0
    assert ok, stats
    assert workers == expected
    assert set(got.values()) == {1}
    assert fake.duplicate_events == 0
