"""Fixtures for the web-layer tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite runs with --import-mode=importlib, which puts no test folder on sys.path: make the
# shared helpers module importable as ``web_helpers`` from this folder's tests.
sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import KeepingRecorder

from cioguard.blocked import drain
from cioguard.pitfalls import bounces
from cioguard.telemetry.recorder import get_recorder, set_recorder


@pytest.fixture
def recorder() -> Iterator[KeepingRecorder]:
    previous = get_recorder()
    keeping = KeepingRecorder()
    set_recorder(keeping)
    try:
        yield keeping
    finally:
        set_recorder(previous)


@pytest.fixture(autouse=True)
def _no_pending_blocked_time() -> None:
    """Blocked time is tallied and observed in bulk: earlier tests' values go to earlier recorders."""
    drain()


@pytest.fixture(autouse=True)
def _forget_bounces() -> Iterator[None]:
    """Every WebhookReceiver registers itself with CIO008 (process-global): leave no trace."""
    bounces.clear()
    yield
    bounces.clear()
