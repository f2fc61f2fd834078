"""A Customer.io API behind a gateway path: every request goes under that path, as the SDK sends it.

The SDK's ``CustomerIO(url_prefix="/cio/api/v1")`` and a ``track_url``/``api_url`` with a path both
name a gateway that routes nothing else; v2 batches and the v1 requests (an anonymous event) must
reach it there, with default options. The emulator serves only under ``/cio`` (404 elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.delivery.spool import endpoint_resolver
from cioguard.operations.endpoints import track_endpoint
from cioguard.testing import FakeCustomerIO


@pytest.fixture
def gateway() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(mount="/cio") as emulator, emulator.trust():
        yield emulator


def _send(cio: CustomerIO) -> None:
    cio.identify("u1", email="u1@example.com")
    cio.track("u1", "signed_up", {"plan": "pro"})
    cio.track_anonymous("anon-1", "page_opened")  # no v2 form: a v1 POST /api/v1/events


def _check(gateway: FakeCustomerIO) -> None:
    assert cioguard.flush(timeout=10) is True
    stats = cioguard.stats()
    assert stats["delivered"] == 3
    assert not any(stats["dropped"].values())
    assert set(gateway.stats()["by_status"]) == {200}
    person = gateway.person("u1")
    assert person is not None
    assert person.attributes["email"] == "u1@example.com"
    assert sorted(e.name for e in gateway.events) == ["page_opened", "signed_up"]


def test_the_sdk_url_prefix_is_kept(gateway: FakeCustomerIO) -> None:
    cioguard.instrument(pitfalls="off", registry=CollectorRegistry())  # defaults: the client's own URL
    try:
        cio = gateway.client()
        assert cio.base_url.endswith("/cio/api/v1")
        _send(cio)
        _check(gateway)
    finally:
        cioguard.uninstrument(timeout=5)


def test_a_track_url_with_a_path_is_kept(gateway: FakeCustomerIO) -> None:
    cioguard.instrument(pitfalls="off", registry=CollectorRegistry(), track_url=gateway.track_url)
    try:
        _send(CustomerIO(gateway.site_id, gateway.api_key))  # built for track.customer.io
        _check(gateway)
    finally:
        cioguard.uninstrument(timeout=5)


def test_blocking_mode_sends_to_the_same_gateway_path(gateway: FakeCustomerIO) -> None:
    """The SDK's own requests (blocking mode) rerouted to a track_url written with the API prefix."""
    cioguard.instrument(
        pitfalls="off", registry=CollectorRegistry(), mode="blocking", track_url=gateway.track_url + "/api/v1"
    )
    try:
        cio = CustomerIO(gateway.site_id, gateway.api_key)
        assert cio.identify("u1", email="u1@example.com").status_code == 200
        assert cio.track("u1", "signed_up", {"plan": "pro"}).status_code == 200
        assert set(gateway.stats()["by_status"]) == {200}
        assert [e.name for e in gateway.events] == ["signed_up"]
    finally:
        cioguard.uninstrument(timeout=5)


def test_rows_recovered_from_a_spool_take_the_same_base() -> None:
    """``cioguard replay --track-url`` and a restarted process: the base live operations get."""
    stored = track_endpoint("site", "key", "https://track.customer.io")
    resolve = endpoint_resolver("https://gw.example.com/cio/api/v1/", None)
    assert resolve(stored).base_url == "https://gw.example.com/cio"
    assert resolve(stored).auth_header == stored.auth_header
