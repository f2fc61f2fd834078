"""Where ``instrument()`` installs its SIGTERM handler, and where it must not (in-process checks;
the real-process behaviour is in ``tests/reliability/test_exit.py``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import cioguard
from cioguard import exits, threads
from cioguard.testing import FakeCustomerIO


def instrument() -> None:
    cioguard.instrument(pitfalls="off", registry=CollectorRegistry())


@pytest.fixture(autouse=True)
def restore_sigterm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    cioguard.uninstrument(timeout=1.0)
    signal.signal(signal.SIGTERM, previous)


def apps_handler(signum: int, frame: Any) -> None:  # pragma: no cover - never delivered
    raise AssertionError("not called in these tests")


def test_installed_over_the_default_and_removed_by_uninstrument() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    instrument()
    assert signal.getsignal(signal.SIGTERM) is exits._on_sigterm
    cioguard.uninstrument(timeout=1.0)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("existing", [apps_handler, signal.SIG_IGN], ids=["handler", "ignored"])
def test_an_existing_disposition_is_left_alone(existing: Any) -> None:
    signal.signal(signal.SIGTERM, existing)
    instrument()
    assert signal.getsignal(signal.SIGTERM) is existing
    cioguard.uninstrument(timeout=1.0)
    assert signal.getsignal(signal.SIGTERM) is existing


def test_a_handler_installed_later_wins_and_uninstrument_keeps_it() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    instrument()
    signal.signal(signal.SIGTERM, apps_handler)
    cioguard.uninstrument(timeout=1.0)
    assert signal.getsignal(signal.SIGTERM) is apps_handler


def test_instrument_from_another_thread_installs_nothing_and_does_not_fail() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            instrument()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert errors == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_mask_process_signals_blocks_them_in_the_calling_thread_only() -> None:
    seen: list[set[int]] = []

    def run() -> None:
        threads.mask_process_signals()
        seen.append(set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert seen
    assert seen[0] >= threads.PROCESS_SIGNALS
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def blocked_signals(thread: threading.Thread) -> set[int]:
    """The signals ``thread`` blocks, from ``/proc/self/task/<tid>/status`` (Linux)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:")), 16)
    return {number for number in range(1, 65) if mask & (1 << (number - 1))}


# A sender thread that takes SIGTERM (or SIGINT …) off the kernel's queue while the main thread
# sleeps in a system call delays the handler, cioguard's or the app's, until the main thread wakes:
# seen as a script ignoring SIGTERM for 30 s. The delivery engine must call
# cioguard.threads.mask_process_signals() first thing in its threads (asked of its owner).
def test_delivery_threads_leave_process_signals_to_the_main_thread(fake: FakeCustomerIO) -> None:
    cioguard.instrument(track_url=fake.track_url, pitfalls="off", registry=CollectorRegistry())
    from customerio import CustomerIO

    CustomerIO("site-id", "track-key").track("p1", "started_the_threads")
    assert cioguard.flush(5.0)
    senders = [t for t in threading.enumerate() if t.name.startswith("cioguard-delivery")]
    assert senders
    for thread in senders:
        assert blocked_signals(thread) >= threads.PROCESS_SIGNALS, thread.name
