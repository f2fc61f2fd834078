"""Real processes: exit flush, exit bound on a dead endpoint, fork, SIGKILL + spool recovery."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.delivery.replay import main as replay_main
from cioguard.operations.model import Endpoint

SCRIPT = str(Path(__file__).parent / "child_script.py")


def run_child(*args: str, timeout: float = 30.0) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return proc, time.monotonic() - began


@pytest.mark.slow
def test_exit_without_shutdown_delivers_everything(sink: Sink) -> None:
    proc, _ = run_child(sink.url, "500", "exit")
    assert proc.returncode == 0, proc.stderr
    ids = [e["id"] for e in sink.entries()]
    assert len(ids) == 500
    assert len(set(ids)) == 500


def dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.slow
def test_exit_is_bounded_on_a_hanging_endpoint(sink: Sink) -> None:
    sink.default = Reply(200, delay=30.0)
    proc, elapsed = run_child(sink.url, "100", "exit")
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 1.5 + 4.0  # exit_timeout 1.5 s + interpreter start
    # Every operation is accounted for: in flight at the deadline (logged as unknown), or, when
    # the request never got through on a loaded machine, counted as dropped at shutdown.
    assert "in flight at the shutdown deadline" in proc.stderr or "dropped 100" in proc.stderr


@pytest.mark.slow
def test_exit_is_bounded_on_a_refusing_endpoint() -> None:
    proc, elapsed = run_child(f"http://127.0.0.1:{dead_port()}", "100", "exit")
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 1.5 + 4.0


def test_fork_child_sends_only_its_own(sink: Sink, endpoint: Endpoint) -> None:
    engine = DeliveryEngine(DeliveryConfig(flush_interval=60.0))
    try:
        parent_ops = [make_op(endpoint, person="parent", seq=i) for i in range(5)]
        for op in parent_ops:
            engine.submit(op)
        pid = os.fork()
        if pid == 0:  # child: exit code tells the parent what happened
            code = 1
            try:
                assert engine.stats()["queue_size"] == 0
                engine.submit(make_op(endpoint, person="child", seq=100))
                code = 0 if engine.flush(5.0) and engine.stats()["delivered"] == 1 else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert [e["identifiers"]["id"] for e in sink.entries()] == ["child"]
        assert engine.flush(5.0)
        people = Counter(e["identifiers"]["id"] for e in sink.entries())
        assert people == {"child": 1, "parent": 5}
    finally:
        engine.shutdown(1.0)


_ENGINE: DeliveryEngine | None = None


def _mp_child(url: str) -> None:
    assert _ENGINE is not None
    endpoint = Endpoint(api="track", base_url=url, auth_header="Basic eDp5")
    _ENGINE.submit(make_op(endpoint, person="mp-child", seq=7))
    if not _ENGINE.flush(5.0):
        raise SystemExit(2)


def test_multiprocessing_fork_child(sink: Sink, endpoint: Endpoint) -> None:
    global _ENGINE
    _ENGINE = DeliveryEngine(DeliveryConfig(flush_interval=60.0))
    try:
        for i in range(3):
            _ENGINE.submit(make_op(endpoint, person="parent", seq=i))
        ctx = multiprocessing.get_context("fork")
        proc = ctx.Process(target=_mp_child, args=(sink.url,))
        proc.start()
        proc.join(15)
        assert proc.exitcode == 0
        assert [e["identifiers"]["id"] for e in sink.entries()] == ["mp-child"]
        assert _ENGINE.flush(5.0)
        assert Counter(e["identifiers"]["id"] for e in sink.entries()) == {"mp-child": 1, "parent": 3}
    finally:
        _ENGINE.shutdown(1.0)
        _ENGINE = None


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["always", "group"])
def test_spool_recovery_after_sigkill(sink: Sink, endpoint: Endpoint, tmp_path: Path, sync: str) -> None:
    spool = str(tmp_path / "cio.spool")
    sink.default = Reply(503)  # nothing is acknowledged before the kill
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, sink.url, "300", "hang", spool, sync], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert oct(os.stat(spool).st_mode & 0o777) == "0o600"
    assert sink.entries() == []
    sink.default = Reply(200)
    engine = DeliveryEngine(DeliveryConfig(spool_path=spool, flush_interval=0.0, max_queue_size=100))
    try:
        assert engine.flush(15.0)
        stats = engine.stats()
        assert (stats["delivered"], stats["queue_size"], stats["spilled"]) == (300, 0, 0)
        # the spool's row count follows its writer thread's commit of the last acks
        end = time.monotonic() + 5.0
        while engine.stats()["spool_size"] and time.monotonic() < end:
            time.sleep(0.01)
        spool_size = engine.stats()["spool_size"]
    finally:
        engine.shutdown(2.0)
    ids = Counter(e["id"] for e in sink.entries())
    assert len(ids) == 300
    assert set(ids.values()) == {1}  # each exactly once
    assert spool_size == 0
    # per-person order survives the spill to disk and the restart
    seqs: dict[str, list[int]] = {}
    for entry in sink.entries():
        seqs.setdefault(entry["identifiers"]["id"], []).append(entry["attributes"]["n"])
    assert all(s == sorted(s) for s in seqs.values())


def test_spool_overflow_spills_instead_of_dropping(sink: Sink, endpoint: Endpoint, tmp_path: Path) -> None:
    sink.default = Reply(200, delay=0.05)
    engine = DeliveryEngine(
        DeliveryConfig(spool_path=str(tmp_path / "s"), max_queue_size=10, lanes=2, max_batch_operations=5)
    )
    try:
        ops = [make_op(endpoint, person=f"p{i % 3}", seq=i) for i in range(100)]
        assert all(engine.submit(op) for op in ops)
        assert engine.stats()["spilled"] > 0
        assert engine.flush(20.0)
        assert engine.stats()["dropped"]["queue_full"] == 0
    finally:
        engine.shutdown(2.0)
    entries = sink.entries()
    assert sorted(e["id"] for e in entries) == sorted(op.op_id for op in ops)
    for person in ("p0", "p1", "p2"):
        ns = [e["attributes"]["n"] for e in entries if e["identifiers"]["id"] == person]
        assert ns == sorted(ns)


def test_shutdown_keeps_undelivered_in_spool_and_replay_delivers(
    sink: Sink, endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = str(tmp_path / "s")
    dead = Endpoint(api="track", base_url=f"http://127.0.0.1:{dead_port()}", auth_header="Basic eDp5")
    engine = DeliveryEngine(
        DeliveryConfig(spool_path=spool, spool_sync="always", retry_base=0.05, max_retries=100)
    )
    ops = [make_op(dead, person="p", seq=i) for i in range(20)]
    for op in ops:
        engine.submit(op)
    engine.shutdown(0.3)
    assert engine.stats()["dropped"]["shutdown"] == 0
    assert replay_main([spool, "--inspect"]) == 0
    out = capsys.readouterr().out
    assert "total: 20 operation(s)" in out
    assert "Basic" not in out
    assert replay_main([spool, "--track-url", sink.url, "--timeout", "10"]) == 0
    assert sorted(e["id"] for e in sink.entries()) == sorted(op.op_id for op in ops)
    assert replay_main([spool, "--inspect"]) == 0
    assert "total: 0 operation(s)" in capsys.readouterr().out
    assert replay_main([str(tmp_path / "missing")]) == 2


def test_processes_sharing_a_spool_claim_each_row_once(
    sink: Sink, endpoint: Endpoint, tmp_path: Path
) -> None:
    spool = str(tmp_path / "shared")
    sink.default = Reply(503)
    writers = [
        DeliveryEngine(
            DeliveryConfig(spool_path=spool, flush_interval=0.0, retry_base=0.01, max_retries=1000)
        )
        for _ in range(2)
    ]
    ops = [make_op(endpoint, person=f"p{i % 5}", seq=i) for i in range(60)]
    for i, op in enumerate(ops):
        writers[i % 2].submit(op)
    for engine in writers:
        engine.shutdown(0.2)  # nothing acknowledged: every row stays, released for others
    sink.default = Reply(200)
    readers: list[DeliveryEngine] = []
    lock = threading.Lock()

    def open_reader() -> None:
        engine = DeliveryEngine(DeliveryConfig(spool_path=spool, flush_interval=0.0))
        with lock:
            readers.append(engine)

    threads = [threading.Thread(target=open_reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert all(engine.flush(10.0) for engine in readers)
    finally:
        for engine in readers:
            engine.shutdown(1.0)
    ids = Counter(e["id"] for e in sink.entries())
    assert set(ids) == {op.op_id for op in ops}
    assert set(ids.values()) == {1}
