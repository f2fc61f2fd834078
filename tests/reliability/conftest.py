"""Fixtures of the reliability suite: emulators, and instrumentation that is always undone."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

# --import-mode=importlib puts no test folder on sys.path: make ``reliability_support`` importable.
sys.path.insert(0, str(Path(__file__).parent))

import cioguard
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    """A plain-HTTP emulator (the sender does not care; TLS would only cost CPU in load tests)."""
    with FakeCustomerIO(https=False) as emulator:
        yield emulator


@pytest.fixture
def instrument() -> Iterator[Instrument]:
    """``cioguard.instrument(**options)`` with pitfalls off and a fast flush; undone after the test."""

    def make(**options: Any) -> None:
        options.setdefault("pitfalls", "off")
        options.setdefault("flush_interval", 0.05)
        options.setdefault("registry", CollectorRegistry())
        cioguard.instrument(**options)

    yield make
    cioguard.uninstrument(timeout=5)
