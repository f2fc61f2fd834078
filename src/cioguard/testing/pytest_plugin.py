"""pytest plugin (entry point ``pytest11``): provides the ``fake_customerio`` fixture.

Installed with cioguard, so any test suite can write::

    def test_signup(fake_customerio):
        cio = fake_customerio.client()          # the real customerio.CustomerIO, over HTTPS
        cio.track("u1", "signed_up")
        assert fake_customerio.events[0].name == "signed_up"

The fixture is a fresh, started :class:`cioguard.testing.FakeCustomerIO` (HTTPS, default
credentials ``site-id`` / ``track-key`` / ``app-key``) per test, stopped afterwards. During the test
``REQUESTS_CA_BUNDLE`` points at the emulator's CA (``fake.trust()``), so code that builds its own
``requests`` sessions — cioguard's background sender with ``track_url=fake_customerio.track_url``,
or clients your app builds — trusts it too::

    def test_signup_is_delivered(fake_customerio):
        cioguard.instrument(track_url=fake_customerio.track_url, api_url=fake_customerio.api_url)
        try:
            my_app.signup("u1")                       # calls cio.track(...) somewhere inside
            assert cioguard.flush(timeout=5)
            assert [e.name for e in fake_customerio.events] == ["signed_up"]
        finally:
            cioguard.uninstrument()
``fake_customerio_http`` is the same over plain HTTP (for raw clients and cheap benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cioguard.testing.emulator import FakeCustomerIO


@pytest.fixture
def fake_customerio() -> Iterator[FakeCustomerIO]:
    """A running HTTPS Customer.io emulator for one test."""
    with FakeCustomerIO(https=True) as fake, fake.trust():
        yield fake


@pytest.fixture
def fake_customerio_http() -> Iterator[FakeCustomerIO]:
    """A running plain-HTTP Customer.io emulator for one test."""
    with FakeCustomerIO(https=False) as fake:
        yield fake
