"""Pitfall warnings raised through the real SDK point at the user's line and are counted."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import pytest
from customerio import APIClient
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.scope import request_scope
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


def _line() -> int:
    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_lineno


def test_email_as_id_points_at_the_callers_line_in_background_mode(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    line = _line() + 2
    with pytest.warns(cioguard.EmailAsIdWarning) as record:
        client.track("ada@example.com", "signed_up", data={})
    (warning,) = [w for w in record if issubclass(w.category, cioguard.PitfallWarning)]
    assert warning.filename == __file__
    assert warning.lineno == line
    assert "ada@example.com" not in str(warning.message)  # never echoes personal data
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO004"}) == 1
    assert cioguard.flush(timeout=5)
    assert len(fake.events) == 1  # a warning, not a refusal


def test_error_mode_raises_at_the_callers_line_and_queues_nothing(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    client = fake.client()
    instrument(pitfalls="error", disabled_pitfalls=["CIO003", "CIO005"])
    with pytest.raises(cioguard.MillisecondTimestampWarning):
        client.identify("u1", email="ada@example.com", created_at=1_700_000_000_123)
    assert cioguard.flush(timeout=5)
    assert fake.people == {}


def test_python_warning_filters_apply(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", cioguard.PitfallWarning)
        with pytest.raises(cioguard.DynamicEventNameWarning):
            client.track("u1", "viewed_product_123456", data={})


def test_blocking_call_inside_a_request_is_cio007_with_the_milliseconds(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    client = fake.client()
    fake.latency = 0.05
    instrument(mode="blocking", pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    with request_scope("POST", "/signup") as scope:
        line = _line() + 2
        with pytest.warns(cioguard.BlockingCallWarning) as record:
            client.track("u1", "signed_up", data={})
    (warning,) = [w for w in record if issubclass(w.category, cioguard.BlockingCallWarning)]
    assert warning.lineno == line
    assert " ms" in str(warning.message)
    assert scope.blocked_seconds >= 0.05


def test_track_key_given_to_the_app_client_is_cio001(instrument: Instrument, fake: FakeCustomerIO) -> None:
    instrument(pitfalls="warn")
    line = _line() + 2
    with pytest.warns(cioguard.WrongApiKeyWarning) as record:
        APIClient("f82ad78f695bd32f9d99", url=fake.api_url)  # 20 characters: shaped like a Track key
    assert record[0].lineno == line


def test_a_correct_session_is_silent(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(pitfalls="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.identify("u1", email="ada@example.com", created_at=1_700_000_000, plan="pro")
        client.track("u1", "signed_up", data={"method": "google"})
        client.track("u1", "checkout_completed", data={"order_id": "o-1", "total": 12.5})
        client.pageview("u1", "/pricing")
    assert cioguard.flush(timeout=5)
    assert len(fake.events) == 3


def test_oversize_event_data_is_cio014_counted_and_not_sent(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003"])
    line = _line() + 2
    with pytest.warns(cioguard.PayloadLimitWarning) as record:
        client.track("u1", "uploaded", data={"blob": "x" * 150_000})
    assert record[0].lineno == line
    assert registry.get_sample_value("customerio_events_dropped_total", {"reason": "oversize"}) == 1
    assert cioguard.flush(timeout=5)
    assert fake.events == []
