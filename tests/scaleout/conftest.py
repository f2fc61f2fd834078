"""Fixtures: one real redis-server per session (flushed before each test), the emulator."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


from scaleout_helpers import RedisServer

from cioguard.testing import FakeCustomerIO


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    if redis_session.proc is None or redis_session.proc.poll() is not None:
        redis_session.start()  # a test stopped it
    client = redis_session.client()
    client.flushall()
    client.close()
    return redis_session


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False) as emulator:
        yield emulator
