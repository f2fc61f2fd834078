"""pytest plugin (entry point ``pytest11``): provides the ``fake_customerio`` fixture.

Installed with cioguard, so any test suite can write::

    def test_signup(fake_customerio):
        cio = fake_customerio.client()          # the real customerio.CustomerIO, over HTTPS
        cio.track("u1", "signed_up")
        assert fake_customerio.events[0].name == "signed_up"

The fixture is a fresh, started :class:`cioguard.testing.FakeCustomerIO` (HTTPS, default
credentials ``site-id`` / ``track-key`` / ``app-key``) per test, stopped afterwards.
``fake_customerio_http`` is the same over plain HTTP (for raw clients and cheap benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cioguard.testing.emulator import FakeCustomerIO


@pytest.fixture
def fake_customerio() -> Iterator[FakeCustomerIO]:
    """A running HTTPS Customer.io emulator for one test."""
    with FakeCustomerIO(https=True) as fake:
        yield fake


@pytest.fixture
def fake_customerio_http() -> Iterator[FakeCustomerIO]:
    """A running plain-HTTP Customer.io emulator for one test."""
    with FakeCustomerIO(https=False) as fake:
        yield fake
