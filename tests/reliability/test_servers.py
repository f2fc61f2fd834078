"""Real servers: uvicorn + the ASGI middleware, and gunicorn (``preload_app``, 4 workers) + the WSGI
middleware. SIGTERM delivers everything that was queued; under gunicorn every worker's events
arrive, no worker resends the master's pre-fork events, and ``/metrics`` aggregates all workers.

``CIOGUARD_FLUSH_INTERVAL=5``: partial batches wait 5 s, so the events sent just before SIGTERM are
still queued when it arrives and only the shutdown path can deliver them.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from reliability_support import APPS, BIN, child_env, delivered_keys, free_port, id_counts, report

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow
EXIT_BOUND = 15.0


@contextlib.contextmanager
def serve(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=APPS)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def terminate(process: subprocess.Popen[bytes]) -> float:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(EXIT_BOUND + 10)
    return time.monotonic() - began


# Two common ways for a bare ASGI app not to support lifespan: raise on a non-http scope, or just
# return. The middleware must take lifespan over in both cases, or SIGTERM flushes nothing (and
# uvicorn re-raises SIGTERM after its shutdown, so no atexit hook runs either).
def uvicorn_sigterm_delivers_everything(
    fake: FakeCustomerIO, tmp_path: Path, scenario: str, extra_argv: list[str], **env: str
) -> None:
    """uvicorn serving ``asgi_app:app``: 1 000 events sent over 40 requests, then SIGTERM; every one
    arrives once, within the exit bound."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "asgi_app:app", "--port", str(port), "--log-level", "warning"]
    n, per_request = 40, 25
    with serve(
        argv + extra_argv,
        child_env(fake.track_url, CIOGUARD_FLUSH_INTERVAL="5", **env),
        port,
        tmp_path / "uvicorn.log",
    ) as process:
        with ThreadPoolExecutor(4) as pool:  # concurrent: every worker gets requests

            def hit(r: int) -> int:
                params = {"n": per_request, "start": r * per_request}
                return httpx.get(f"http://127.0.0.1:{port}/send", params=params, timeout=10).status_code

            assert set(pool.map(hit, range(n))) == {200}
        before = len(fake.events)
        exit_seconds = terminate(process)
    got = delivered_keys(fake)
    report(
        scenario,
        operations_sent=n * per_request,
        delivered_before_sigterm=before,
        delivered=sum(got.values()),
        duplicated=sum(x - 1 for x in got.values()),
        lost=n * per_request - len(got),
        exit_seconds=round(exit_seconds, 2),
    )
    # uvicorn >= 0.29 re-raises the signal after its graceful shutdown: -SIGTERM is a clean exit.
    assert process.returncode in (0, -signal.SIGTERM), (tmp_path / "uvicorn.log").read_text()
    assert before < n * per_request  # the flush interval kept events queued until SIGTERM
    assert set(got) == {("asgi", i) for i in range(n * per_request)}
    assert all(x == 1 for x in got.values())
    assert exit_seconds < EXIT_BOUND


@pytest.mark.parametrize("lifespan", ["raise", "return"])
def test_uvicorn_sigterm_delivers_everything(fake: FakeCustomerIO, tmp_path: Path, lifespan: str) -> None:
    scenario = f"sigterm_uvicorn_asgi_app_{lifespan}s"
    uvicorn_sigterm_delivers_everything(fake, tmp_path, scenario, [], APP_LIFESPAN=lifespan)


# Without the middleware nothing flushes at lifespan shutdown, and uvicorn re-raises SIGTERM after
# its graceful shutdown with the default handler back, so atexit never runs: the exit flush at the
# end of uvicorn's shutdown delivers (in every --workers process). 0 of 200 arrived before it.
@pytest.mark.parametrize("workers", [1, 2])
def test_uvicorn_without_the_middleware_delivers_at_sigterm(
    fake: FakeCustomerIO, tmp_path: Path, workers: int
) -> None:
    scenario = f"sigterm_uvicorn_{workers}_workers_no_middleware"
    uvicorn_sigterm_delivers_everything(
        fake, tmp_path, scenario, ["--workers", str(workers)], APP_MIDDLEWARE="off"
    )


def metric_sum(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_gunicorn_preload_workers_fork_safe_metrics_and_sigterm(fake: FakeCustomerIO, tmp_path: Path) -> None:
    port, master_events = free_port(), 50
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = child_env(
        fake.track_url,
        CIOGUARD_FLUSH_INTERVAL="5",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        APP_MASTER_EVENTS=str(master_events),
        GUNICORN_WORKERS="4",
    )
    argv = [str(BIN / "gunicorn"), "-c", str(APPS / "gunicorn_conf.py"), "--bind", f"127.0.0.1:{port}"]
    requests, per_request = 160, 10
    began = time.monotonic()
    with serve(argv, env, port, tmp_path / "gunicorn.log") as process:
        url = f"http://127.0.0.1:{port}"

        def hit(_: int) -> Any:
            return httpx.get(f"{url}/send", params={"n": per_request}, timeout=10).json()

        with ThreadPoolExecutor(8) as pool:  # concurrent: every sync worker gets requests
            answers = list(pool.map(hit, range(requests)))
        expected = {(a["who"], s) for a in answers for s in range(a["seqs"][0], a["seqs"][1] + 1)}
        total = len(expected) + master_events
        # Everything so far goes out within the 5 s flush interval; then /metrics must add up.
        assert fake.wait_for(lambda: len(fake.events) >= total, timeout=20), len(fake.events)
        scraped = httpx.get(f"{url}/metrics", timeout=10).text
        delivered_metric = metric_sum(scraped, "customerio_events_delivered_total")
        # A last round is still queued (flush interval) when SIGTERM arrives.
        with ThreadPoolExecutor(8) as pool:
            last = list(pool.map(hit, range(40)))
        expected |= {(a["who"], s) for a in last for s in range(a["seqs"][0], a["seqs"][1] + 1)}
        queued_at_sigterm = len(expected) + master_events - len(fake.events)
        exit_seconds = terminate(process)
    got = delivered_keys(fake)
    sends = id_counts(fake.requests)
    workers = {who for who, _ in expected}
    report(
        "gunicorn_preload_4_workers",
        workers_seen=len(workers),
        operations_sent=len(expected) + master_events,
        queued_at_sigterm=queued_at_sigterm,
        delivered=sum(got.values()),
        duplicated=sum(x - 1 for x in got.values()),
        lost=len(expected | {("master", i) for i in range(master_events)}) - len(got),
        metric_delivered_total=delivered_metric,
        exit_seconds=round(exit_seconds, 2),
        duration_s=round(time.monotonic() - began, 2),
    )
    log = (tmp_path / "gunicorn.log").read_text()
    assert process.returncode == 0, log
    assert len(workers) >= 2, workers
    assert set(got) == expected | {("master", i) for i in range(master_events)}
    assert all(x == 1 for x in got.values())
    assert max(sends.values()) == 1
    assert fake.duplicate_events == 0
    assert delivered_metric == total, scraped
    assert queued_at_sigterm > 0
    assert exit_seconds < EXIT_BOUND
