"""Fixtures for the delivery tests: a loopback sink, an endpoint on it, a fake clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sink import FakeClock, Sink

from cioguard.delivery.engine import DeliveryEngine
from cioguard.operations.model import Endpoint


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def endpoint(sink: Sink) -> Endpoint:
    return Endpoint(api="track", base_url=sink.url, auth_header="Basic c2l0ZTprZXk=", label="track-test")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engines() -> Iterator[list[DeliveryEngine]]:
    """Engines a test starts (append them): each is shut down after the test."""
    made: list[DeliveryEngine] = []
    yield made
    for engine in made:
        engine.shutdown(2.0)
