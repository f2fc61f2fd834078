"""gunicorn and uWSGI workers deliver what they queued when they exit, with only
``cioguard.instrument()`` in a bare WSGI app (no cioguard middleware, no server hooks).

Workers are recycled (``--max-requests 3``): a recycled worker leaves right after its last
request, long before a partial batch would go out on its own (default ``flush_interval`` 1 s).
And the server gets SIGTERM right after the last request, while the last events are still
queued. Both servers leave a worker through the interpreter's ``atexit`` (gunicorn: ``sys.exit``
in the worker; uWSGI: its Python plugin runs ``atexit``, except in a worker it kills brutally while
busy, or at all with ``--skip-atexit``: hence the graceful SIGTERM of the README's recipe).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from process_support import (
    APPS,
    BIN,
    child_env,
    delivered_keys,
    expected_keys,
    free_port,
    wait_delivered,
)

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

REQUESTS, PER_REQUEST = 8, 10


def command(server: str, port: int, recycle: bool, extra: list[str]) -> list[str]:
    recycling = ["--max-requests", "3"] if recycle else []
    if server == "gunicorn":
        argv = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2"]
        return [*argv, *recycling, "--no-control-socket", *extra, "wsgi_app:app"]
    argv = [str(BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}", "--wsgi-file", "wsgi_app.py"]
    argv += ["--master", "--processes", "2", *recycling, "--min-worker-lifetime", "0"]
    # The README's recipe: SIGTERM as a graceful shutdown. uWSGI 2.0's --die-on-term kills workers
    # at once, and one still finishing a request then skips atexit (its last events are lost).
    graceful = (
        [] if "--die-on-term" in extra else ["--hook-master-start", "unix_signal:15 gracefully_kill_them_all"]
    )
    return [*argv, *graceful, "--disable-logging", *extra]


def serve(
    fake: FakeCustomerIO,
    server: str,
    mode: str,
    extra: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    before_term: Callable[[set[str]], None] | None = None,
) -> tuple[int, set[str], int]:
    """Start the server, send the requests, SIGTERM it: (delivered before SIGTERM, pids, exit code).

    ``mode``: ``recycle`` waits (bounded) for every event while the server still runs, then stops
    it; ``term`` stops it right after the last request; ``recycle+term`` does both at once;
    ``idle+term`` waits for every event, then stops it (workers idle: the usual production stop).
    ``before_term`` gets the workers' pids just before the SIGTERM.
    """
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(server, port, "recycle" in mode, extra),
            env=child_env(fake.track_url, **(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=APPS,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        pids = set()
        for w in range(REQUESTS):
            query = {"w": w, "n": PER_REQUEST}
            response = httpx.get(f"http://127.0.0.1:{port}/send", params=query, timeout=10)
            assert response.status_code == 200
            pids.add(response.text)
        if mode in ("recycle", "idle+term"):
            wait_delivered(fake, REQUESTS * PER_REQUEST, timeout=15)
        before = len(fake.events)
        if before_term is not None:
            before_term(pids)
        if server == "gunicorn":
            # gunicorn's own race: a worker forked by the last recycle that gets SIGTERM before its
            # init_signals() runs the arbiter's inherited handler, ignores it and lives until the
            # master is gone. Give a freshly forked worker a moment to boot (seen on a busy box).
            time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return before, pids, process.returncode


# uWSGI runs recycling and SIGTERM separately: a shutdown that lands while a recycled worker is
# still leaving is not what this test is about. gunicorn's master always waits for its workers.
@pytest.mark.parametrize(
    ("server", "mode", "extra"),
    [
        ("gunicorn", "recycle+term", ["--preload"]),
        ("gunicorn", "recycle+term", []),
        ("uwsgi", "recycle", []),
        ("uwsgi", "term", []),
    ],
    ids=["gunicorn-preload", "gunicorn", "uwsgi-recycle", "uwsgi-term"],
)
def test_workers_deliver_at_exit(
    fake: FakeCustomerIO, tmp_path: Path, server: str, mode: str, extra: list[str]
) -> None:
    log = tmp_path / "server.log"
    before, pids, code = serve(fake, server, mode, extra, log)
    got = delivered_keys(fake)
    print(f"{server} {mode} {extra}: {len(pids)} workers, {before} delivered before SIGTERM, {len(got)}")
    assert code == 0, log.read_text()
    if "recycle" in mode:
        assert len(pids) > 2, pids  # workers were recycled
    if mode == "recycle":
        assert before == REQUESTS * PER_REQUEST, log.read_text()  # recycled workers delivered
    assert set(got) == expected_keys(REQUESTS, PER_REQUEST)
    assert all(n == 1 for n in got.values())
    assert fake.duplicate_events == 0


# What the uWSGI recipe warns about: a brutal shutdown (--die-on-term) with --skip-atexit ends
# every worker with _exit, skipping its only exit path.
def test_uwsgi_brutal_shutdown_with_skip_atexit_loses_what_workers_queued(
    fake: FakeCustomerIO, tmp_path: Path
) -> None:
    serve(fake, "uwsgi", "term", ["--die-on-term", "--skip-atexit"], tmp_path / "server.log")
    assert len(fake.events) < REQUESTS * PER_REQUEST


@pytest.mark.parametrize(
    ("server", "extra", "postfork"),
    [
        ("uwsgi", [], ""),
        ("uwsgi", [], "decorators"),
        ("uwsgi", [], "direct"),
        ("uwsgi", ["--threads", "4"], "direct"),
        ("gunicorn", ["--preload"], ""),
    ],
    ids=["uwsgi", "uwsgi-uwsgidecorators", "uwsgi-own-post-fork-hook", "uwsgi-threads", "gunicorn"],
)
def test_workers_of_a_master_that_already_sent_deliver(
    fake: FakeCustomerIO, tmp_path: Path, server: str, extra: list[str], postfork: str
) -> None:
    """The master made a call before the fork (a start-up event at import). uWSGI forks without
    Python's fork hooks: each worker inherited a sender with no threads and delivered nothing,
    or hung (a master's sender thread held the GIL at the fork)."""
    log = tmp_path / "server.log"
    boot = 5
    env = {"BOOT_EVENTS": str(boot), "APP_POSTFORK": postfork}
    before, _, code = serve(fake, server, "idle+term", extra, log, env=env)
    got = delivered_keys(fake)
    assert code == 0, log.read_text()
    assert before >= REQUESTS * PER_REQUEST, log.read_text()  # delivered while the workers ran
    boot_keys = {("w99", 99 * boot + i) for i in range(boot)}
    assert set(got) == expected_keys(REQUESTS, PER_REQUEST) | boot_keys
    assert all(n == 1 for n in got.values())  # the master's start-up events once, not per worker
    # The workers queued (v2 batches), none sent synchronously through the SDK (v1), also when
    # the app replaced cioguard's post-fork hook (a worker then starts fresh at its first call).
    synchronous = [e for e in fake.events if e.person != "w99" and e.via != "v2"]
    assert synchronous == [], log.read_text()


def _blocked_signals(pid: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)


def test_gevent_workers_still_receive_sigterm(fake: FakeCustomerIO, tmp_path: Path) -> None:
    """Under gevent cioguard's sender "threads" are greenlets on the worker's only OS thread: they
    blocked SIGTERM there, so an idle worker never saw it and gunicorn SIGKILLed it after
    graceful_timeout (30 s) — no exit flush, nothing counted or logged."""
    blocked: dict[str, int] = {}

    def look(pids: set[str]) -> None:
        for pid in pids:
            blocked[pid] = _blocked_signals(pid)

    log = tmp_path / "server.log"
    extra = ["--worker-class", "gevent", "--graceful-timeout", "20"]
    began = time.monotonic()
    _, pids, code = serve(fake, "gunicorn", "idle+term", extra, log, before_term=look)
    assert code == 0, log.read_text()
    assert blocked, pids
    for pid, mask in blocked.items():
        assert not mask & (1 << (signal.SIGTERM - 1)), f"worker {pid} blocks SIGTERM: {mask:#x}"
    assert time.monotonic() - began < 20, log.read_text()  # not SIGKILLed at graceful_timeout
    assert set(delivered_keys(fake)) == expected_keys(REQUESTS, PER_REQUEST)


def test_uwsgi_workers_keep_the_spool(fake: FakeCustomerIO, tmp_path: Path) -> None:
    """An explicit opt-in (``spool_path``): uWSGI runs no Python before-fork hook, and every
    worker took its inherited spool handle for one caught mid-write and kept to memory."""
    log = tmp_path / "server.log"
    env = {"CIOGUARD_SPOOL_PATH": str(tmp_path / "cio.spool"), "BOOT_EVENTS": "2"}
    _, _, code = serve(fake, "uwsgi", "idle+term", [], log, env=env)
    assert code == 0, log.read_text()
    assert "forked during a spool write" not in log.read_text()
    assert set(delivered_keys(fake)) >= expected_keys(REQUESTS, PER_REQUEST)


@pytest.mark.parametrize("postfork", ["", "direct"], ids=["hooked", "own-post-fork-hook"])
def test_uwsgi_synchronous_blocks_return_every_response(
    fake: FakeCustomerIO, tmp_path: Path, postfork: str
) -> None:
    """A worker's first request reads three responses inside ``cioguard.synchronous()``: each
    is the SDK's own (the way cioguard leaves the master's synchronous start-up must not end
    a user's block early)."""
    port = free_port()
    env = child_env(fake.track_url, BOOT_EVENTS="1", APP_POSTFORK=postfork)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command("uwsgi", port, False, []), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=APPS
        )
    try:
        deadline = time.monotonic() + 30
        answers: list[str] = []
        while len(answers) < 4:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                answers.append(httpx.get(f"http://127.0.0.1:{port}/sync", timeout=10).text)
                continue
            time.sleep(0.05)
        assert set(answers) == {"Response,Response,Response"}, answers
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
