"""A ``CustomerIO`` subclass that overrides ``send_request`` or ``_build_session`` keeps its calls
synchronous, so that code still runs for every request (real SDK, real HTTP to the emulator,
default options); a subclass that only adds helpers stays in the background."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from customerio import CustomerIO
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.testing import FakeCustomerIO
from cioguard.testing.certs import make_trusting


class Audited(CustomerIO):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.audit: list[str] = []

    def send_request(self, method: str, url: str, data: Any) -> Any:
        self.audit.append(f"{method} {url.rsplit('/api/', 1)[1]}")
        return super().send_request(method, url, data)


class Helpers(CustomerIO):  # type: ignore[misc]
    def signed_up(self, user: str) -> Any:
        return self.track(user, "signed_up")


def _client(kind: type[CustomerIO], fake: FakeCustomerIO) -> Any:
    client = kind(fake.site_id, fake.api_key, host="127.0.0.1", port=fake.port)
    assert fake.ca_bundle is not None
    return make_trusting(client, fake.ca_bundle)


def test_a_send_request_override_sees_every_call(
    fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    cioguard.instrument(pitfalls="off", registry=CollectorRegistry())
    try:
        cio = _client(Audited, fake)
        with caplog.at_level(logging.WARNING, logger="cioguard.instrumentation"):
            response = cio.identify("u1", email="u1@example.com")
            cio.track("u1", "signed_up", {"plan": "pro"})
            cio.track("u1", "upgraded")
        assert response is not None
        assert response.status_code == 200
        assert cio.audit == [
            "PUT v1/customers/u1",
            "POST v1/customers/u1/events",
            "POST v1/customers/u1/events",
        ]
        assert sorted(e.name for e in fake.events) == ["signed_up", "upgraded"]
        said = [r.getMessage() for r in caplog.records if "overrides send_request" in r.getMessage()]
        assert len(said) == 1
        assert "Audited" in said[0]
    finally:
        cioguard.uninstrument(timeout=5)


def test_a_subclass_with_helpers_only_stays_in_the_background(fake: FakeCustomerIO) -> None:
    cioguard.instrument(pitfalls="off", registry=CollectorRegistry())
    try:
        cio = _client(Helpers, fake)
        assert cio.signed_up("u2") is None  # queued
        assert cioguard.flush(timeout=10) is True
        assert [r.path for r in fake.requests] == ["/api/v2/batch"]
    finally:
        cioguard.uninstrument(timeout=5)
