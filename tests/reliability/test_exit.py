"""Signals and exit of a real script process: everything delivered, and exit bounded when the
endpoint is dead (the undelivered operations counted, logged, or kept in the spool).

The script is ``apps/script_app.py``; its last line ``STATS {json}`` is ``cioguard.stats()`` after
cioguard's own atexit flush ran.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import (
    APPS,
    ROOT,
    child_env,
    delivered_keys,
    free_port,
    json_line,
    report,
    wait_line,
)

from cioguard.testing import FakeCustomerIO

SCRIPT = str(APPS / "script_app.py")
N = 2_000
EXIT_TIMEOUT = 1.5
#: Interpreter start + imports on a loaded 2-core machine, on top of the exit deadline.
SLACK = 4.0

pytestmark = pytest.mark.slow


def start(count: int, mode: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(count), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], since: float) -> tuple[list[str], str, float]:
    out, err = process.communicate(timeout=60)
    return out.splitlines(), err, time.monotonic() - since


def expected(count: int) -> set[tuple[str, int]]:
    return {(f"p{i % 17}", i) for i in range(count)}


@pytest.mark.parametrize("mode", ["exit", "sigterm"])
def test_everything_is_delivered_at_exit(fake: FakeCustomerIO, mode: str) -> None:
    env = child_env(fake.track_url, CIOGUARD_EXIT_TIMEOUT="10")
    began = time.monotonic()
    process = start(N, mode, env)
    lines = wait_line(process, "READY", 30)
    ready = time.monotonic()
    if mode == "sigterm":
        process.send_signal(signal.SIGTERM)
    more, err, exit_seconds = finish(process, ready)
    stats = json_line(lines + more, "STATS ")
    got = delivered_keys(fake)
    report(
        f"exit_{mode}",
        operations_sent=N,
        delivered=sum(got.values()),
        duplicated=sum(n - 1 for n in got.values()),
        lost=len(expected(N) - set(got)),
        dropped=stats["dropped"],
        exit_seconds=round(exit_seconds, 2),
        duration_s=round(time.monotonic() - began, 2),
    )
    assert process.returncode == 0, err
    assert set(got) == expected(N)
    assert all(n == 1 for n in got.values())
    assert stats["delivered"] == N, stats
    assert sum(stats["dropped"].values()) == 0, stats
    assert fake.duplicate_events == 0


@pytest.mark.parametrize("dead", ["refused", "stalled", "throttled"])
@pytest.mark.parametrize("spool", [False, True])
def test_exit_is_bounded_on_a_dead_endpoint(dead: str, spool: bool, tmp_path: Path) -> None:
    """``throttled``: 429 with a Retry-After far past the exit deadline (nothing in flight)."""
    port = free_port()
    spool_path = str(tmp_path / "cio.spool")
    options = {"CIOGUARD_EXIT_TIMEOUT": str(EXIT_TIMEOUT), "CIOGUARD_MAX_QUEUE_SIZE": str(N)}
    if spool:
        options["CIOGUARD_SPOOL_PATH"] = spool_path
    url = f"http://127.0.0.1:{port}"
    with FakeCustomerIO(https=False, port=port) as fake:
        if dead == "throttled":
            fake.fail_next(10_000, status=429, retry_after=30.0)
        else:
            fake.stall_next(10_000, seconds=60.0)  # every request held and never applied
        if dead == "refused":
            fake.stop()  # nobody listens on the port any more
        process = start(N, "exit", child_env(url, **options))
        lines = wait_line(process, "READY", 30)
        more, err, exit_seconds = finish(process, time.monotonic())
        stats = json_line(lines + more, "STATS ")
        applied = 0 if dead == "refused" else len(fake.events)
    report(
        f"exit_dead_{dead}_{'spool' if spool else 'memory'}",
        operations_sent=N,
        delivered=stats["delivered"],
        dropped=stats["dropped"],
        in_flight_at_deadline=stats["in_flight"],
        spool_size=stats["spool_size"],
        exit_seconds=round(exit_seconds, 2),
    )
    assert process.returncode == 0, err
    assert exit_seconds < EXIT_TIMEOUT + SLACK, err
    assert stats["delivered"] == 0
    assert applied == 0
    # Every accepted operation is accounted for: dropped (shutdown, or expired when
    # refused connections use up max_retries before the deadline), in flight at the deadline
    # (warned about), or kept in the spool.
    kept = stats["spool_size"] if spool else 0
    assert sum(stats["dropped"].values()) + stats["in_flight"] + kept >= N, stats
    if stats["in_flight"]:
        assert "still in flight at the shutdown deadline" in err
    if any(stats["dropped"].values()):
        assert "cioguard dropped" in err
    if dead == "throttled":
        assert stats["in_flight"] == 0, stats  # a 429's pause waits in the queue, not in a request
    if not spool:
        # Requests still out at the deadline are counted too (the process never sees them end).
        assert sum(stats["dropped"].values()) == N, stats
        assert stats["queue_size"] == 0, stats
        return
    # The next process (same spool, the endpoint back on the same port) delivers what was kept,
    # each exactly once.
    with FakeCustomerIO(https=False, port=port) as fake:
        process = start(0, "drain", child_env(url, CIOGUARD_SPOOL_PATH=spool_path))
        out, err, _ = finish(process, time.monotonic())
        got = delivered_keys(fake)
    assert process.returncode == 0, err
    assert "DRAINED True" in out
    assert all(n == 1 for n in got.values())
    assert len(got) == kept
    assert len(got) + sum(stats["dropped"].values()) == N


def test_spool_keeps_everything_when_the_endpoint_refuses_at_exit(tmp_path: Path) -> None:
    spool_path = str(tmp_path / "cio.spool")
    env = child_env(
        f"http://127.0.0.1:{free_port()}",
        CIOGUARD_EXIT_TIMEOUT=str(EXIT_TIMEOUT),
        CIOGUARD_SPOOL_PATH=spool_path,
    )
    process = start(N, "exit", env)
    lines = wait_line(process, "READY", 30)
    more, _err, _ = finish(process, time.monotonic())
    stats = json_line(lines + more, "STATS ")
    assert sum(stats["dropped"].values()) == 0, stats
    assert stats["spool_size"] == N, stats


# Regression test: drops are logged at most once a minute per reason; what is still unlogged must
# be logged at shutdown, or the exit log under-reports what was lost.
def test_exit_log_reports_every_dropped_operation() -> None:
    env = child_env(f"http://127.0.0.1:{free_port()}", CIOGUARD_EXIT_TIMEOUT=str(EXIT_TIMEOUT))
    process = start(N, "exit", env)
    lines = wait_line(process, "READY", 30)
    more, err, _ = finish(process, time.monotonic())
    stats = json_line(lines + more, "STATS ")
    logged = sum(int(m) for m in re.findall(r"cioguard dropped (\d+) ", err))
    assert logged == sum(stats["dropped"].values()), (err, stats)


# -- SIGTERM, with and without a handler of the app's own -------------------------------------------

SIGTERM_APP = str(ROOT / "tests" / "process_models" / "apps" / "sigterm_app.py")
SIGTERM_N = 4_100


def default_env(track_url: str, **options: str) -> dict[str, str]:
    """Only the emulator's URL: every other option keeps its default (flush_interval 1 s …)."""
    env = child_env(track_url, **options)
    env.pop("CIOGUARD_FLUSH_INTERVAL")
    return env


def sigterm_run(
    handler: str, env: dict[str, str], count: int = SIGTERM_N, signum: int = signal.SIGTERM
) -> tuple[subprocess.Popen[str], str, str, float]:
    """Start the app, signal it once it queued ``count`` events; (process, stdout, stderr, exit s)."""
    argv = [sys.executable, SIGTERM_APP, str(count), handler]
    # The with block closes the pipes even when an assertion ends the test early.
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            lines = wait_line(process, "READY", 30)
            began = time.monotonic()
            process.send_signal(signum)
            out, err = process.communicate(timeout=30)
            return process, "\n".join([*lines, out]), err, time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.mark.parametrize("handler", ["none", "before", "after", "chain"])
def test_sigterm_delivers_everything_and_the_apps_handler_still_runs(
    fake: FakeCustomerIO, handler: str
) -> None:
    process, out, err, exit_seconds = sigterm_run(handler, default_env(fake.track_url))
    got = delivered_keys(fake)
    report(
        f"sigterm_handler_{handler}",
        operations_sent=SIGTERM_N,
        delivered=sum(got.values()),
        duplicated=sum(n - 1 for n in got.values()),
        lost=len(expected(SIGTERM_N) - set(got)),
        exit_seconds=round(exit_seconds, 2),
        returncode=process.returncode,
    )
    if handler in ("none", "chain"):
        # cioguard's handler ran last: it flushed, then the process died by the signal as before.
        assert process.returncode == -signal.SIGTERM, err
    else:
        assert process.returncode == 0, err  # the app's handler exited; atexit flushed
    assert ("HANDLER RAN" in out) == (handler != "none"), out
    assert set(got) == expected(SIGTERM_N)
    assert all(n == 1 for n in got.values())
    assert fake.duplicate_events == 0


def test_sighup_with_its_default_action_delivers_everything(fake: FakeCustomerIO) -> None:
    # A closed terminal or ssh session: like SIGTERM, flushed, then the process dies by the signal.
    process, _out, err, _seconds = sigterm_run("none", default_env(fake.track_url), signum=signal.SIGHUP)
    got = delivered_keys(fake)
    assert process.returncode == -signal.SIGHUP, err
    assert set(got) == expected(SIGTERM_N)
    assert all(n == 1 for n in got.values())


# An explicit opt-in (exit_timeout=1.5 instead of 5) only to keep the test short: the bound is
# what is checked, whatever its value.
def test_sigterm_flush_is_bounded_on_a_dead_endpoint() -> None:
    env = default_env(f"http://127.0.0.1:{free_port()}", CIOGUARD_EXIT_TIMEOUT=str(EXIT_TIMEOUT))
    process, _out, err, exit_seconds = sigterm_run("none", env, count=N)
    report("sigterm_dead_endpoint", operations_sent=N, exit_seconds=round(exit_seconds, 2))
    assert process.returncode == -signal.SIGTERM, err
    assert exit_seconds < EXIT_TIMEOUT + SLACK, err
    assert "cioguard dropped" in err or "still in flight" in err, err


# A SIGTERM that arrives while the script's own exit flush runs must not cut it short: the flush
# finishes (here a first request held 2 s, then dropped and retried), then the process dies by the
# signal. Before, the handler found the sender closing and killed the process mid-flush.
def test_sigterm_during_the_exit_flush_lets_it_finish(fake: FakeCustomerIO) -> None:
    count = 200
    fake.stall_next(1, seconds=2.0)  # not applied: the connection is dropped after 2 s
    argv = [sys.executable, SIGTERM_APP, str(count), "none", "return"]
    env = default_env(fake.track_url)
    with subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            wait_line(process, "READY", 30)
            time.sleep(0.5)  # inside the 2 s stall of the exit flush
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    got = delivered_keys(fake)
    assert process.returncode == -signal.SIGTERM, err
    assert set(got) == expected(count)
    assert all(n == 1 for n in got.values())
