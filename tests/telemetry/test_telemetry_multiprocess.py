"""prometheus_client multiprocess mode: real worker processes, one merged scrape."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cioguard.metrics import child_exit, make_wsgi_app

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


WORKER = """
import os, sys
from cioguard.telemetry import PrometheusRecorder
recorder = PrometheusRecorder()
calls = int(sys.argv[1])
for _ in range(calls):
    recorder.call("track", "background", 1e-5)
recorder.dropped("queue_full", calls)
recorder.queue_size(calls)
recorder.queue_capacity(100)
recorder.spool_operations(1)
print(os.getpid())
"""


def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = status

    body = b"".join(make_wsgi_app()({"REQUEST_METHOD": "GET"}, start_response))
    assert captured["status"] == "200 OK"
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _, value in samples.get(name, []))


@pytest.mark.slow
def test_workers_are_merged_and_dead_workers_lose_their_live_gauges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    pids = []
    for calls in (2, 3, 5):
        done = subprocess.run(
            [sys.executable, "-c", WORKER, str(calls)], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        pids.append(int(done.stdout.strip()))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))

    merged = scrape()
    assert total(merged, "customerio_calls_total") == 10
    assert total(merged, "customerio_events_dropped_total") == 10
    assert total(merged, "customerio_call_duration_seconds_count") == 10
    assert total(merged, "customerio_queue_size") == 10  # livesum
    assert total(merged, "customerio_spool_operations") == 3  # livesum
    capacity = merged["customerio_queue_capacity"]  # liveall: one series per worker
    assert sorted(int(labels["pid"]) for labels, _ in capacity) == sorted(pids)
    assert {value for _, value in capacity} == {100}

    child_exit(None, SimpleNamespace(pid=pids[2]))  # gunicorn's hook for the worker that did 5 calls
    after = scrape()
    assert total(after, "customerio_calls_total") == 10  # counters never go backwards
    assert total(after, "customerio_queue_size") == 5
    assert total(after, "customerio_spool_operations") == 2
    assert len(after["customerio_queue_capacity"]) == 2


MASTER = """
import os
from cioguard.telemetry import PrometheusRecorder
recorder = PrometheusRecorder()   # what instrument() does in a gunicorn master with preload_app
recorder.queue_capacity(100)
recorder.queue_size(0)
child = os.fork()                 # then it forks its workers, and never calls
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print(os.getpid())
"""


@pytest.mark.slow
def test_a_process_that_forks_before_it_works_exports_no_queue_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preloading gunicorn master instruments, forks its workers, never calls, and lives as long
    as they do: its capacity would dilute sum(size) / sum(capacity), so the queue alert could never
    fire. (A worker, idle or not, exports its capacity from the start.)"""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    pids = []
    for script, args in ((MASTER, []), (WORKER, ["2"])):
        done = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        pids.append(int(done.stdout.strip()))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    capacity = {int(labels["pid"]): value for labels, value in scrape()["customerio_queue_capacity"]}
    assert capacity[pids[1]] == 100
    assert capacity.get(pids[0], 0) == 0  # the gauge exists from its creation, at 0: nothing added


def test_child_exit_without_multiprocess_dir_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    child_exit(None, SimpleNamespace(pid=12345))


def test_child_exit_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    child_exit(None, object())  # no .pid: logged, not raised


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


@pytest.mark.slow
def test_gunicorn_workers_share_one_view_and_child_exit_cleans_up(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()  # wiped = fresh for this master start
    port = free_port()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    log = (tmp_path / "gunicorn.log").open("wb")
    master = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(HERE / "gunicorn_conf.py"),
         "-b", f"127.0.0.1:{port}", "gunicorn_app:app"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(HERE),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert master.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                _get(f"{base}/pid")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.1)
        pids = {int(_get(f"{base}/work")) for _ in range(40)}
        # Whichever worker answers the scrape, it reports all workers' calls.
        for _ in range(4):
            seen = _samples(_get(f"{base}/metrics"))
            assert total(seen, "customerio_calls_total") == 40
        capacity_pids = {int(labels["pid"]) for labels, _ in seen["customerio_queue_capacity"]}
        assert pids <= capacity_pids
        # Kill one worker that served traffic: gunicorn replaces it and calls child_exit.
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:
            seen = _samples(_get(f"{base}/metrics"))
            live = {int(labels["pid"]) for labels, _ in seen.get("customerio_queue_capacity", [])}
            if victim not in live:
                break
            assert time.monotonic() < deadline, "child_exit did not remove the dead worker's gauges"
            time.sleep(0.1)
        assert total(seen, "customerio_calls_total") == 40  # the dead worker's counts are kept
    finally:
        master.terminate()
        try:
            master.wait(15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait(5)
        log.close()


def test_setting_the_directory_after_import_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import CollectorRegistry

    from cioguard.telemetry import PrometheusRecorder
    from cioguard.telemetry.prometheus import multiprocess_mismatch

    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert multiprocess_mismatch() is None
    # This test process imported prometheus_client without the variable: setting it now is too late.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert "before Python starts" in (multiprocess_mismatch() or "")
    with caplog.at_level("WARNING", logger="cioguard.telemetry"):
        PrometheusRecorder(CollectorRegistry())
    assert any("PROMETHEUS_MULTIPROC_DIR was set after" in r.getMessage() for r in caplog.records)


def test_a_worker_started_with_the_variable_is_not_reported(tmp_path: Path) -> None:
    code = "from cioguard.telemetry.prometheus import multiprocess_mismatch; print(multiprocess_mismatch())"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "None", done.stderr
