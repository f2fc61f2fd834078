"""Fixtures of the process-model tests: a plain-HTTP emulator in the test process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path: make ``process_support`` importable.
sys.path.insert(0, str(Path(__file__).parent))

from cioguard.testing import FakeCustomerIO


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    """The emulator over plain HTTP (the apps' senders do not care; TLS would only cost CPU)."""
    with FakeCustomerIO(https=False) as emulator:
        yield emulator
