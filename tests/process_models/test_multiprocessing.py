"""``multiprocessing`` children deliver what they queued, with only ``cioguard.instrument()``.

Children of the fork and forkserver start methods leave through ``os._exit`` right after the
target returns, skipping ``atexit``; a recycled ``Pool`` worker (``maxtasksperchild=1``) does the
same after each task, and ``with Pool() as pool`` ends its workers with SIGTERM. Default options
(``flush_interval`` 1 s): the children are gone long before a partial batch would leave on its
own, so only the exit hooks can deliver ("spawn" children are fresh interpreters that leave through
``atexit``). The emulator counts what arrived, after the app exited.
"""

from __future__ import annotations

import sys
import time

import pytest
from process_support import APPS, child_env, delivered_keys, expected_keys, free_port, run_app

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

APP = str(APPS / "mp_app.py")
WORKERS, PER_WORKER = 6, 20


def run(fake: FakeCustomerIO, method: str, kind: str, **env: str) -> float:
    began = time.monotonic()
    done = run_app(
        [sys.executable, APP, method, kind, str(WORKERS), str(PER_WORKER)],
        child_env(fake.track_url, **env),
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "DONE" in done.stdout, done.stdout
    return time.monotonic() - began


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("fork", "process"),
        ("fork", "pool"),
        ("fork", "pool-with"),
        ("fork", "executor"),
        ("forkserver", "process"),
        ("forkserver", "pool"),
        ("spawn", "pool"),
        ("billiard:fork", "process"),
        ("billiard:fork", "pool"),
    ],
)
def test_children_deliver_everything_without_a_flush(fake: FakeCustomerIO, method: str, kind: str) -> None:
    seconds = run(fake, method, kind)
    got = delivered_keys(fake)
    print(f"{method}/{kind}: {sum(got.values())} of {WORKERS * PER_WORKER} in {seconds:.2f} s")
    assert set(got) == expected_keys(WORKERS, PER_WORKER)
    assert all(n == 1 for n in got.values()), got
    assert fake.duplicate_events == 0


# The control: the same app with cioguard's exit hooks disabled loses every event, so the test
# above measures the hooks and not, say, a flush interval that happens to be short enough.
def test_without_the_exit_hooks_children_lose_what_they_queued(fake: FakeCustomerIO) -> None:
    run(fake, "fork", "process", APP_WITHOUT_EXIT_HOOKS="1")
    assert len(fake.events) == 0


# An explicit opt-in (exit_timeout=1 instead of 5) only to keep the test short: what is checked is
# that a child's exit flush ends at the bound when the endpoint refuses every connection.
def test_child_exit_is_bounded_on_a_dead_endpoint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    began = time.monotonic()
    done = run_app(
        [sys.executable, APP, "fork", "process", "2", str(PER_WORKER)],
        child_env(url, CIOGUARD_EXIT_TIMEOUT="1"),
        timeout=60,
    )
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert seconds < 1 + 8.0, seconds  # the bound, plus two interpreter starts on a loaded machine
    assert "cioguard dropped" in done.stderr or "still in flight" in done.stderr, done.stderr
