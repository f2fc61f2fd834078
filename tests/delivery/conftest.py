"""Fixtures for the delivery tests: a loopback sink, an endpoint on it, a fake clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sink import FakeClock, Sink

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
