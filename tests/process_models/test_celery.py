"""A real Celery worker (prefork, ``--max-tasks-per-child=1``, filesystem broker: no server)
delivers every task's events with only ``cioguard.instrument()`` in the tasks module.

billiard's pool children leave through ``os._exit``, skipping ``atexit`` and even
multiprocessing's finalizers; Celery's ``worker_process_shutdown`` is where cioguard flushes.
Phase 1: six tasks, each in a fresh child, all delivered while the worker runs. Phase 2: two
tasks still sleeping when the worker gets SIGTERM (warm shutdown): they finish, send, and their
children exit at once, long before a partial batch would leave on its own (default 1 s).

Celery's parent-death SIGKILL follows the thread that forked a child (billiard's Supervisor, for
every replacement child), which ends at warm shutdown: cioguard makes it follow the main process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import celery
import pytest
from process_support import APPS, BIN, child_env, delivered_keys, expected_keys, wait_delivered

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

PER_TASK = 10
RUNNING_TASKS, SHUTDOWN_TASKS = 6, 2


def broker_options(data: Path) -> dict[str, object]:
    queue = str(data / "queue")
    return {
        "data_folder_in": queue,
        "data_folder_out": queue,
        "processed_folder": str(data / "processed"),
        "control_folder": str(data / "control"),
        "store_processed": False,
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for name in ("queue", "processed", "control", "started"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def producer(data: Path) -> Iterator[celery.Celery]:
    """A Celery app in the test process that only sends tasks by name (nothing instrumented here)."""
    app = celery.Celery("producer", broker="filesystem://")
    app.conf.broker_transport_options = broker_options(data)
    yield app
    app.close()


def start_worker(fake: FakeCustomerIO, data: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "celery"), "-A", "celery_app", "worker", "--pool=prefork", "--concurrency=2"]
    argv += ["--max-tasks-per-child=1", "--loglevel=info", "--without-gossip", "--without-mingle"]
    argv += ["--without-heartbeat"]
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            env=child_env(fake.track_url, CELERY_DATA=str(data), **env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=APPS,
        )


def wait_started(data: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(list((data / "started").iterdir())) < count:
        assert time.monotonic() < deadline, f"only {list((data / 'started').iterdir())} started"
        time.sleep(0.05)


def warm_shutdown(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)


def reap(worker: subprocess.Popen[bytes]) -> None:
    """Kill a worker a failed test left running (no stray processes)."""
    if worker.poll() is None:
        worker.kill()
        worker.wait(10)


def test_prefork_children_deliver_while_running_and_at_warm_shutdown(
    fake: FakeCustomerIO, data: Path, producer: celery.Celery
) -> None:
    log = data / "worker.log"
    worker = start_worker(fake, data, log)
    try:
        for w in range(RUNNING_TASKS):
            producer.send_task("celery_app.send", args=(w, PER_TASK))
        assert wait_delivered(fake, RUNNING_TASKS * PER_TASK, timeout=45), log.read_text()
        assert worker.poll() is None, log.read_text()
        for w in range(RUNNING_TASKS, RUNNING_TASKS + SHUTDOWN_TASKS):
            producer.send_task(
                "celery_app.send", args=(w, PER_TASK, 4.0)
            )  # asleep at SIGTERM, even on a busy box
        wait_started(data, RUNNING_TASKS + SHUTDOWN_TASKS, timeout=30)
        before = len(fake.events)
        warm_shutdown(worker)
    finally:
        reap(worker)
    got = delivered_keys(fake)
    print(f"before SIGTERM {before}, after {sum(got.values())}")
    assert worker.returncode == 0, log.read_text()
    assert "Warm shutdown" in log.read_text()
    assert before == RUNNING_TASKS * PER_TASK  # the sleeping tasks had not sent yet
    assert set(got) == expected_keys(RUNNING_TASKS + SHUTDOWN_TASKS, PER_TASK)
    assert all(n == 1 for n in got.values())
    assert fake.duplicate_events == 0


@pytest.mark.parametrize("env", [{}, {"APP_INSTRUMENT_IN_CHILD": "1"}], ids=["at-import", "in-child"])
def test_warm_shutdown_waits_for_children_still_delivering(
    fake: FakeCustomerIO, data: Path, producer: celery.Celery, env: dict[str, str]
) -> None:
    """Children forked by billiard's Supervisor thread survive its exit at warm shutdown.

    Celery arms ``PR_SET_PDEATHSIG=SIGKILL`` in each child, and Linux ties it to the *thread* that
    forked the child: billiard's Supervisor thread forks every replacement child and ends ≤0.8 s
    after the pool closes, while the children may still run their task or deliver. A 429 with
    ``Retry-After: 1.5`` to each child's first request keeps both delivering then (well within the
    default 5 s ``exit_timeout``): neither may be killed.
    """
    log = data / "worker.log"
    worker = start_worker(fake, data, log, **env)
    try:
        for w in range(2):  # both first children recycle: the Supervisor forks the next ones
            producer.send_task("celery_app.send", args=(w, PER_TASK))
        assert wait_delivered(fake, 2 * PER_TASK, timeout=45), log.read_text()
        fake.fail_next(2, status=429, retry_after=1.5)
        for w in range(2, 4):
            producer.send_task("celery_app.send", args=(w, PER_TASK, 3.0))
        wait_started(data, 4, timeout=30)
        warm_shutdown(worker)
    finally:
        reap(worker)
    text = log.read_text()
    assert worker.returncode == 0, text
    got = delivered_keys(fake)
    assert set(got) == expected_keys(4, PER_TASK), text
    assert all(n == 1 for n in got.values())


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaps has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_children_still_die_when_the_main_process_is_killed(
    fake: FakeCustomerIO, data: Path, producer: celery.Celery
) -> None:
    """cioguard makes Celery's parent-death SIGKILL process-scoped; it must still come, promptly."""
    log = data / "worker.log"
    worker = start_worker(fake, data, log)
    children: list[int] = []
    try:
        for w in range(2):  # both first children recycle: the Supervisor forks the next ones
            producer.send_task("celery_app.send", args=(w, PER_TASK))
        assert wait_delivered(fake, 2 * PER_TASK, timeout=45), log.read_text()
        for w in range(2, 4):
            producer.send_task("celery_app.send", args=(w, PER_TASK, 60.0))
        wait_started(data, 4, timeout=30)
        children = children_of(worker.pid)
        assert len(children) == 2, children
        worker.kill()
        worker.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in children), log.read_text()
    finally:
        reap(worker)
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
