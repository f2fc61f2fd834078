"""Fixtures for the emulator's own tests: an HTTPS emulator for the SDK, an HTTP one for raw clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cioguard.testing import FakeCustomerIO


class Raw:
    """A plain ``requests`` client for an HTTP emulator (Track Basic auth unless told otherwise)."""

    def __init__(self, fake: FakeCustomerIO) -> None:
        self.fake = fake
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(
        self,
        method: str,
        path: str,
        json: Any = None,
        data: bytes | None = None,
        auth: tuple[str, str] | None = ("site-id", "track-key"),
        **kw: Any,
    ) -> requests.Response:
        return self.session.request(
            method, self.fake.url + path, json=json, data=data, auth=auth, timeout=10, **kw
        )

    def batch(self, entries: list[Any]) -> requests.Response:
        return self("POST", "/api/v2/batch", json={"batch": entries})


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True) as emulator:
        yield emulator


@pytest.fixture
def http_fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False) as emulator:
        yield emulator


@pytest.fixture
def raw(http_fake: FakeCustomerIO) -> Iterator[Raw]:
    client = Raw(http_fake)
    yield client
    client.session.close()
