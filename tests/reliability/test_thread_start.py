"""When no sender thread can start — Python 3.12.0-3.12.1 refuses new threads during interpreter
shutdown; a container's pids limit refuses them any time — nothing accepted is lost or sent twice:
the failed start is tried again at the next call, ``flush()`` and the exit flush send on their
own thread, and the caller never sees the error (the call is queued already, so a fall back to
the SDK would send it twice). Real SDK, real HTTP, ``instrument()``'s defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from customerio import CustomerIO
from reliability_support import APPS, delivered_keys, json_line

import cioguard
import cioguard.delivery.state as state
from cioguard.testing import FakeCustomerIO

N = 300


class _Unstartable(threading.Thread):
    """A thread the system will not start (as under a pids limit)."""

    def start(self) -> None:
        raise RuntimeError("can't start new thread")


class _Refusing:
    """``daemon_thread`` whose threads refuse to start while ``refusing()`` says so."""

    def __init__(self, refusing: Callable[[], bool]) -> None:
        self.refusing = refusing
        self.refused = 0
        self.real = state.daemon_thread

    def __call__(self, target: Callable[..., Any], name: str) -> threading.Thread:
        if self.refusing():
            self.refused += 1
            return _Unstartable(target=target, name=name, daemon=True)
        return self.real(target, name)


@contextmanager
def instrumented(fake: FakeCustomerIO) -> Iterator[CustomerIO]:
    """Defaults; the 17 people identified first (no CIO003), so the first call here starts the
    sender threads."""
    cioguard.instrument(track_url=fake.url)
    client = CustomerIO("site-id", "track-key")  # sent to the emulator by track_url
    for person in range(17):
        client.identify(f"p{person}", email=f"p{person}@example.com")
    try:
        yield client
    finally:
        cioguard.uninstrument(timeout=5)


def _send(client: CustomerIO, first: int, count: int) -> None:
    for i in range(first, first + count):
        client.track(f"p{i % 17}", "thread_event", data={"who": f"p{i % 17}", "seq": i})


def _expected(count: int) -> dict[tuple[str, int], int]:
    return {(f"p{i % 17}", i): 1 for i in range(count)}


def test_a_failed_start_is_tried_again_and_nothing_is_sent_twice(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = iter(range(1_000_000))
    refusing = _Refusing(lambda: next(calls) == 0)  # only the very first thread refuses
    monkeypatch.setattr(state, "daemon_thread", refusing)
    monkeypatch.setattr(state, "START_RETRY", 0.0)  # (1 s between tries: a later call tries here)
    with instrumented(fake) as client:
        _send(client, 0, N)
        # Delivered by the threads a later call started, without a flush.
        assert fake.wait_for(lambda: len(delivered_keys(fake)) == N, timeout=10)
        assert cioguard.flush(timeout=10) is True
        stats = cioguard.stats()
    assert refusing.refused == 1
    assert stats["fallbacks"] in ({}, 0), stats["fallbacks"]  # no call went through the SDK
    assert stats["running"] is True
    assert dict(delivered_keys(fake)) == _expected(N)  # each once, none through the SDK too
    assert not [r.path for r in fake.requests if r.path.startswith("/api/v1/")]  # no SDK send


def test_with_no_thread_at_all_flush_and_shutdown_send_on_their_own_thread(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing = _Refusing(lambda: True)
    monkeypatch.setattr(state, "daemon_thread", refusing)
    with instrumented(fake) as client:
        _send(client, 0, N)
        assert cioguard.stats()["queue_size"] == N + 17  # queued, and the caller saw no error
        assert cioguard.flush(timeout=10) is True  # sent by the flushing thread
        _send(client, N, N)
        cioguard.shutdown(timeout=10)  # the same at the close
        stats = cioguard.stats()
    assert refusing.refused >= 1  # (tried again at most once a second)
    assert stats["delivered"] == 17 + 2 * N, stats
    assert not sum(stats["dropped"].values()), stats
    assert dict(delivered_keys(fake)) == _expected(2 * N)


def test_calls_made_while_the_interpreter_exits_are_delivered(fake: FakeCustomerIO) -> None:
    """The 3.12.0-3.12.1 shape: the first calls come from an atexit hook, when no thread starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIOGUARD_")}
    env.update(CIOGUARD_TRACK_URL=fake.url, PYTHONPATH=str(APPS))
    done = subprocess.run(
        [sys.executable, str(APPS / "late_start_app.py"), str(N)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stats = json_line(done.stdout.splitlines(), "STATS ")
    assert stats["delivered"] == N, stats
    assert not sum(stats["dropped"].values()), stats
    assert not stats["fallbacks"], stats
    assert dict(delivered_keys(fake)) == _expected(N)
    assert done.stderr.count("could not start a sender thread") == 1, done.stderr


def test_with_no_thread_callers_are_not_slowed_for_nothing(
    fake: FakeCustomerIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Backpressure pauses callers so the sender can catch up: with no sender thread nothing
    drains until a flush, so the 1-50 ms pause only slowed the app (30 ms per call near full)."""
    from cioguard.delivery import backpressure

    pauses: list[float] = []
    monkeypatch.setattr(backpressure, "_pause", pauses.append)
    monkeypatch.setattr(state, "daemon_thread", _Refusing(lambda: True))
    burst = 9_500  # past 7/8 of the default max_queue_size (10 000)
    with instrumented(fake) as client:
        _send(client, 0, burst)
        assert [delay for delay in pauses if delay > 0] == []
        assert cioguard.flush(timeout=30) is True  # sent by the flushing thread
    assert len(delivered_keys(fake)) == burst
