"""Fixtures for the pitfall tests: a fresh engine with a fake clock, and clean global state."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cioguard.pitfalls import PitfallConfig, PitfallEngine, bounces, clear_events

# The helpers module sits next to this file; tests import it by its (unique) name.
sys.path.insert(0, str(Path(__file__).parent))
from pitfall_helpers import CountingRecorder, FakeClock


@pytest.fixture(autouse=True)
def _clean_global_state() -> Iterator[None]:
    bounces.clear()
    clear_events()
    yield
    bounces.clear()
    clear_events()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> CountingRecorder:
    return CountingRecorder()


@pytest.fixture
def engine(clock: FakeClock, recorder: CountingRecorder) -> PitfallEngine:
    return PitfallEngine(PitfallConfig(), recorder, clock=clock)
