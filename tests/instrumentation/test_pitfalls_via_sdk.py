"""Pitfall warnings raised through the real SDK point at the user's line and are counted."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from customerio import APIClient, CustomerIO
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.scope import request_scope
from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import WebhookReceiver, sign

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


def test_blocking_call_inside_a_request_is_cio007_with_the_milliseconds_in_the_debug_log(
    instrument: Instrument, fake: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    client = fake.client()
    fake.latency = 0.05
    instrument(mode="blocking", pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    caplog.set_level(logging.DEBUG, logger="cioguard.pitfalls")
    with request_scope("POST", "/signup") as scope:
        line = _line() + 2
        with pytest.warns(cioguard.BlockingCallWarning) as record:
            client.track("u1", "signed_up", data={})
    (warning,) = [w for w in record if issubclass(w.category, cioguard.BlockingCallWarning)]
    assert warning.lineno == line
    assert " ms" not in str(warning.message)  # constant text: shown once per line
    assert any(" ms in POST /signup" in r.getMessage() for r in caplog.records)
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
    assert not cioguard.flush(timeout=5)  # something was dropped since the last flush: flush says so
    assert fake.events == []


def test_a_repeated_finding_is_shown_once_per_line_and_counted_every_time(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    client = fake.client()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")  # Python's default: once per (text, category, line)
        for number in range(300):  # a bulk script: one client per row, ids in event names
            fake.client()
            client.track(f"user-{number}", f"row_{100_000 + number}_deleted", data={})
    shown = sorted(w.category.__name__ for w in record)
    assert shown == ["ClientPerRequestWarning", "DynamicEventNameWarning"]
    # cioguard.flush() pushes the repeats' counts (a scrape or a process exit right after sees them).
    assert cioguard.flush(timeout=10)
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO009"}) == 300
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO006"}) == 300


def test_an_error_filter_raises_at_the_call_every_time(instrument: Instrument, fake: FakeCustomerIO) -> None:
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003", "CIO005"])
    client = fake.client()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        with pytest.warns(cioguard.EmailAsIdWarning):
            client.track("ada@example.com", "signed_up", data={})  # shown once here ...
        warnings.simplefilter("error", cioguard.PitfallWarning)
        for _ in range(3):  # ... and still raised on every later call once the filter says so
            with pytest.raises(cioguard.EmailAsIdWarning):
                client.track("ada@example.com", "signed_up", data={})


def test_first_client_built_lazily_in_a_request_is_not_cio009(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003"])

    @functools.lru_cache(maxsize=1)
    def get_cio() -> Any:
        return fake.client()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for route in ("/signup", "/checkout", "/signup"):
            with request_scope("POST", route):
                get_cio().identify("u1", email="ada@example.com")
    line = _line() + 3
    with request_scope("POST", "/signup"), pytest.warns(cioguard.ClientPerRequestWarning) as record:
        # a second client for the same credentials: that is the pitfall
        fake.client()
    assert (record[0].filename, record[0].lineno) == (__file__, line)
    assert "share it" in str(record[0].message)


def test_cioguards_own_webhook_actions_are_never_findings(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="warn")
    receiver = WebhookReceiver("signing-key", client=client, on_bounce="unsubscribe")
    body = json.dumps(
        {
            "event_id": "01HZXBOUNCE0001",
            "object_type": "email",
            "metric": "bounced",
            "timestamp": 1_700_000_000,
            "data": {"customer_id": "never-identified", "identifiers": {"id": "never-identified"}},
        }
    ).encode()
    now = str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-cio-timestamp": now,
        "x-cio-signature": sign("signing-key", now, body),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CIO003/CIO005 here would raise
        with ThreadPoolExecutor(1) as pool:  # as a server's worker thread would run it
            assert pool.submit(receiver.handle, "POST", headers, body).result().status == 200
    assert cioguard.flush(timeout=5)
    assert fake.people["never-identified"].attributes["unsubscribed"] is True
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO005"}) is None


def test_a_401_on_the_sender_names_the_line_that_built_the_client(
    fake: FakeCustomerIO, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    cioguard.instrument(
        track_url=fake.track_url,
        registry=registry,
        flush_interval=0.05,
        disabled_pitfalls=["CIO003", "CIO005"],
    )
    try:
        line = _line() + 1
        client = fake.client()
        fake.fail_next(1, status=401, path="/api/")
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            client.identify("u1", email="ada@example.com")
            cioguard.flush(timeout=5)
        shown = [w for w in record if issubclass(w.category, cioguard.WrongApiKeyWarning)]
        assert [(w.filename, w.lineno) for w in shown] == [(__file__, line)]
        assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO001"}) == 1
        assert [r.getMessage()[:6] for r in caplog.records if r.name == "cioguard.pitfalls"] == ["CIO001"]
    finally:
        cioguard.uninstrument(timeout=5)


def test_a_legacy_call_names_the_3x_spelling_and_is_counted(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003"])
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'plan'.*track\(customer_id, name, data="
    ):
        client.track(customer_id="u1", name="order_paid", plan="pro")
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO015"}) == 1


def test_a_missing_argument_is_an_ordinary_type_error_not_cio015(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="warn", disabled_pitfalls=["CIO003"])
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'name'") as raised:
        client.track("u1")
    assert "CIO015" not in str(raised.value)
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'id'") as raised:
        client.identify()
    assert "CIO015" not in str(raised.value)
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO015"}) is None
    # The 1.x/2.x shapes of identify are still named and counted.
    with pytest.raises(TypeError, match=r"takes identify\(id, \*\*attributes\); the id is the first"):
        client.identify(customer_id="u1", email="u1@example.com")
    with pytest.raises(TypeError, match=r"CIO015: customerio 3.x takes identify"):
        client.identify("u1", {"email": "u1@example.com"})
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO015"}) == 2


def test_a_legacy_call_is_not_counted_when_pitfalls_are_off(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(pitfalls="off")
    with pytest.raises(TypeError, match=r"CIO015: customerio 3.x takes track\(customer_id, name, data="):
        client.track(customer_id="u1", name="order_paid", plan="pro")
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO015"}) is None


@contextlib.contextmanager
def _cio004_only(fake: FakeCustomerIO, registry: CollectorRegistry) -> Iterator[None]:
    """instrument() with only CIO004 of interest (CIO003 off); undone after."""
    cioguard.instrument(track_url=fake.track_url, registry=registry, disabled_pitfalls=["CIO003"])
    try:
        yield
    finally:
        cioguard.uninstrument(timeout=5)


def _email_id_lines_from_a_pool(client: Any) -> list[tuple[str, int]]:
    """Where CIO004 warns for an email id tracked by a thread pool (no application frame)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(1) as pool:  # the stdlib calls the SDK: no application frame
            pool.submit(client.track, "ada@example.com", "signed_up", data={}).result()
    return [(w.filename, w.lineno) for w in record if issubclass(w.category, cioguard.EmailAsIdWarning)]


def test_a_call_with_no_line_of_yours_is_attributed_to_the_line_that_built_its_client(
    fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    with _cio004_only(fake, registry):
        line = _line() + 1
        client = CustomerIO(fake.site_id, fake.api_key, host="127.0.0.1", port=fake.port)
        assert _email_id_lines_from_a_pool(client) == [(__file__, line)]


def test_a_call_with_no_line_of_yours_is_attributed_to_the_instrument_line(
    fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()  # built before instrument(): no client line is known
    line = _line() + 1
    cioguard.instrument(track_url=fake.track_url, registry=registry, disabled_pitfalls=["CIO003"])
    try:
        assert _email_id_lines_from_a_pool(client) == [(__file__, line)]
    finally:
        cioguard.uninstrument(timeout=5)


def test_a_call_through_sync_to_async_or_run_in_threadpool_is_not_pinned_to_the_helpers_line(
    fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    # asgiref and anyio run the SDK method in a worker thread: their own lines are not the
    # application's, so the finding goes to the client's line, with a note saying why.
    import asyncio

    from asgiref.sync import sync_to_async
    from starlette.concurrency import run_in_threadpool

    with _cio004_only(fake, registry):
        line = _line() + 1
        client = CustomerIO(fake.site_id, fake.api_key, host="127.0.0.1", port=fake.port)

        async def calls() -> None:
            await sync_to_async(client.track)("ada@example.com", "signed_up", data={})
            await run_in_threadpool(client.track, "bob@example.com", "signed_up", data={})

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            asyncio.run(calls())
        found = [w for w in record if issubclass(w.category, cioguard.EmailAsIdWarning)]
        assert [(w.filename, w.lineno) for w in found] == [(__file__, line)] * 2
        assert all("No line of your application" in str(w.message) for w in found)
