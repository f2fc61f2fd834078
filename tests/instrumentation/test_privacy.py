"""The SDK's exceptions reach the caller without personal data unless capture_customer_id=True."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from customerio import CustomerIO, CustomerIOException

import cioguard
from cioguard.instrumentation.privacy import safe_request_text, scrub_sdk_exception

SECRET_ID = "person-4711"


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_http_failure_keeps_status_and_route_only() -> None:
    url = f"https://track.customer.io/api/v1/customers/{SECRET_ID}/events"
    exc = CustomerIOException(f'400: {url} {{"name": "x", "data": {{"email": "a@b.c"}}}} {{"meta": "bad"}}')
    scrub_sdk_exception(exc, url, 400)
    assert str(exc).startswith("400: https://track.customer.io/api/v1/customers/{customer_id}/events (")
    assert SECRET_ID not in str(exc)
    assert "a@b.c" not in str(exc)


def test_transport_failure_names_the_cause_type_and_cuts_the_chain() -> None:
    url = f"https://track.customer.io/api/v1/customers/{SECRET_ID}"
    exc = CustomerIOException("Failed to receive valid response after 3 retries.\nmore")
    exc.__cause__ = ConnectionError(f"Max retries exceeded with url: /api/v1/customers/{SECRET_ID}")
    text = safe_request_text(None, url, exc)
    scrub_sdk_exception(exc, url, None)
    assert str(exc) == text
    assert exc.__cause__ is None
    assert exc.__context__ is None
    assert exc.__suppress_context__
    assert text.startswith("Failed to receive valid response after 3 retries. https://")
    assert "ConnectionError" in text
    assert SECRET_ID not in text


@pytest.fixture
def refused() -> Iterator[str]:
    yield f"http://127.0.0.1:{_dead_port()}"
    cioguard.uninstrument(timeout=1)


@pytest.mark.parametrize("capture", [False, True])
def test_a_failed_synchronous_call_as_the_caller_sees_it(refused: str, capture: bool) -> None:
    cioguard.instrument(track_url=refused, pitfalls="off", capture_customer_id=capture)
    cio = CustomerIO("site", "key", retries=0)
    with cioguard.synchronous(), pytest.raises(CustomerIOException) as raised:
        cio.identify(SECRET_ID, email="ada@example.com")
    if capture:  # explicit opt-in: the SDK's own text and chained cause
        assert SECRET_ID in str(raised.value)
        assert raised.value.__cause__ is not None
    else:
        assert SECRET_ID not in str(raised.value)
        assert raised.value.__cause__ is None
        assert raised.value.__context__ is None  # a tool ignoring __suppress_context__ sees no URL
        assert "capture_customer_id=True" in str(raised.value)
