"""instrument()/uninstrument(): what gets patched, idempotence, exact restoration, modes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import customerio
import pytest
import requests
from customerio import APIClient, CustomerIO, CustomerIOException, SendEmailRequest
from customerio.client_base import ClientBase
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.delivery import DeliveryEngine
from cioguard.instrumentation.instrumentor import APP_METHODS, TRACK_METHODS
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


def _originals() -> dict[tuple[type, str], object]:
    found: dict[tuple[type, str], object] = {}
    for name in (*TRACK_METHODS, "__init__"):
        found[(CustomerIO, name)] = CustomerIO.__dict__[name]
    for name in (*APP_METHODS, "__init__"):
        if name in APIClient.__dict__:
            found[(APIClient, name)] = APIClient.__dict__[name]
    found[(ClientBase, "send_request")] = ClientBase.__dict__["send_request"]
    return found


def test_uninstrument_restores_every_original_function_exactly(instrument: Instrument) -> None:
    before = _originals()
    instrument()
    patched = _originals()
    assert all(patched[key] is not before[key] for key in before), "every SDK function is wrapped"
    cioguard.uninstrument()
    after = _originals()
    assert all(after[key] is before[key] for key in before)


def test_background_track_returns_none_and_is_delivered_as_v2_batch(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    client = fake.client()  # built before instrument(): class-level patches cover it
    instrument()
    assert client.identify("u1", email="ada@example.com", plan="pro") is None
    assert client.track("u1", "signed_up", data={"plan": "pro"}) is None
    assert cioguard.flush(timeout=5)
    person = fake.person("u1")
    assert person is not None
    assert person.attributes["plan"] == "pro"
    assert [(event.name, event.data) for event in fake.events] == [("signed_up", {"plan": "pro"})]
    assert {request.path for request in fake.requests} == {"/api/v2/batch"}


def test_double_instrument_is_harmless(instrument: Instrument, fake: FakeCustomerIO) -> None:
    instrument()
    instrument()
    client = fake.client()
    client.track("u1", "clicked", data={})
    assert cioguard.flush(timeout=5)
    assert len(fake.events) == 1


def test_a_second_instrument_with_other_options_applies_them_over_the_first(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    # As under opentelemetry-instrument: instrumented first, then the app's own instrument(...).
    from cioguard.instrumentation.instrumentor import active_runtime

    client = fake.client()
    instrument()
    client.track("u1", "first", data={})
    with FakeCustomerIO(https=False) as other:
        cioguard.instrument(track_url=other.track_url)
        runtime = active_runtime()
        assert runtime is not None
        assert runtime.options.track_url == other.track_url
        assert runtime.options.registry is registry  # the first call's other options still hold
        assert [event.name for event in fake.events] == ["first"]  # delivered before the switch
        client.track("u1", "second", data={})
        assert cioguard.flush(timeout=5)
        assert [event.name for event in other.events] == ["second"]
        figures = cioguard.stats()  # the replaced runtime's figures included
        assert (figures["accepted"], figures["delivered"]) == (2, 2)
        cioguard.instrument()  # no options: nothing changes
        cioguard.instrument(track_url=other.track_url)  # the same options: nothing changes
        assert active_runtime() is runtime


def test_calls_made_while_instrument_applies_other_options_never_bypass_cioguard(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    import threading

    client = fake.client()
    instrument()
    started, stop = threading.Barrier(4), threading.Event()
    sent = [0, 0, 0]

    def calls(slot: int) -> None:
        started.wait()
        while not stop.is_set() and sent[slot] < 5_000:
            client.track(f"u{slot}", "clicked", data={})
            sent[slot] += 1

    threads = [threading.Thread(target=calls, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    with FakeCustomerIO(https=False) as other:
        started.wait()
        deadline = time.monotonic() + 10
        while min(sent) < 100 and time.monotonic() < deadline:  # every thread is calling
            time.sleep(0.001)
        cioguard.instrument(track_url=other.track_url)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert cioguard.flush(timeout=10)
        # The bare SDK would have sent v1 requests: every one came from a cioguard sender.
        assert {request.path for request in [*fake.requests, *other.requests]} == {"/api/v2/batch"}
        assert len(fake.events) + len(other.events) == sum(sent)


def test_instrument_uninstrument_instrument_round_trip(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument()
    assert client.track("u1", "first", data={}) is None
    cioguard.uninstrument()
    response = client.track("u1", "second", data={})  # the plain SDK again: blocking, returns a Response
    assert isinstance(response, requests.Response)
    instrument()
    assert client.track("u1", "third", data={}) is None
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["first", "second", "third"]


def test_calls_through_the_class_are_patched_too(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument()
    assert CustomerIO.track(client, "u1", "via_class", data={}) is None
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["via_class"]


def test_synchronous_returns_the_sdks_real_response(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument()
    client.identify("u1", email="ada@example.com")  # queued first …
    with cioguard.synchronous():
        response = client.track("u1", "paid", data={"amount": 3})
    assert isinstance(response, requests.Response)
    assert response.status_code == 200
    # … and flushed before the synchronous call, so the person exists before the event.
    assert [request.path for request in fake.requests][:1] == ["/api/v2/batch"]
    assert fake.events[-1].name == "paid"


def test_blocking_mode_keeps_calls_synchronous(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(mode="blocking")
    response = client.track("u1", "blocking_event", data={})
    assert isinstance(response, requests.Response)
    assert fake.requests[-1].path == "/api/v1/customers/u1/events"


def test_the_sdks_own_retries_are_counted_in_blocking_mode(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    """The SDK's urllib3 Retry sleeps out a 429's Retry-After and resends 5xx inside one call:
    each failed attempt is a retry (and a 429 a rate limit, CIO011) though the call returns 200."""
    client = fake.client()
    instrument(mode="blocking", pitfalls="warn", disabled_pitfalls=["CIO003"])
    fake.fail_next(1, status=429, retry_after=1)  # (whole seconds: urllib3 refuses "0.2")
    assert client.track("u1", "rate_limited_once", data={}).status_code == 200
    fake.fail_next(2, status=503)
    assert client.track("u1", "after_two_503", data={}).status_code == 200
    assert [request.status for request in fake.requests] == [429, 200, 503, 503, 200]
    value = registry.get_sample_value
    assert value("customerio_retries_total", {"endpoint": "v1_track", "reason": "status_429"}) == 1
    assert value("customerio_retries_total", {"endpoint": "v1_track", "reason": "status_5xx"}) == 2
    assert value("customerio_rate_limited_total", {"endpoint": "v1_track"}) == 1
    assert value("customerio_pitfalls_total", {"code": "CIO011"}) == 1


def test_track_url_routes_clients_built_for_the_real_api(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    # A client configured for the real Customer.io host: the option reroutes it without code changes.
    client = CustomerIO(fake.site_id, fake.api_key)
    instrument(mode="blocking")
    assert client.track("u1", "routed_blocking", data={}).status_code == 200
    cioguard.uninstrument()
    instrument()
    client.track("u1", "routed_background", data={})
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["routed_blocking", "routed_background"]


def test_sdk_validation_errors_reach_the_caller_unchanged(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    client = fake.client()
    instrument()
    with pytest.raises(CustomerIOException, match="customer_id cannot be blank in track"):
        client.track("", "x")
    with pytest.raises(TypeError, match="items"):
        client.track("u1", "x", data={"items": {1, 2}})
    with pytest.raises(TypeError):
        client.track("u1")  # missing the event name, as the SDK's own signature says
    assert cioguard.flush(timeout=5)
    assert fake.events == []


def test_app_api_sends_stay_synchronous_and_return_delivery_id(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    api = fake.api_client()
    instrument()
    result = api.send_email(
        SendEmailRequest(transactional_message_id=3, to="ada@example.com", identifiers={"id": "u1"})
    )
    assert isinstance(result, dict)
    assert result["delivery_id"]
    assert len(fake.deliveries) == 1


def test_stats_report_the_queue(instrument: Instrument, fake: FakeCustomerIO) -> None:
    assert cioguard.stats()["instrumented"] is False
    client = fake.client()
    instrument()
    for number in range(5):
        client.track("u1", "counted", data={"n": number})
    assert cioguard.flush(timeout=5)
    stats = cioguard.stats()
    assert stats["instrumented"] is True
    assert stats["delivered"] == 5
    client.track("u1", "counted", data={"n": 5})
    cioguard.uninstrument(timeout=5)
    final = cioguard.stats()  # a script's report after uninstrument(): the final figures
    assert final["instrumented"] is False
    assert (final["accepted"], final["delivered"], final["queue_size"]) == (6, 6, 0)
    instrument()
    assert cioguard.stats()["delivered"] == 0  # a new runtime counts from 0


def test_shutdown_counts_later_calls_as_dropped(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument()
    client.track("u1", "before", data={})
    cioguard.shutdown(timeout=5)
    client.track("u1", "after", data={})
    assert [event.name for event in fake.events] == ["before"]
    assert cioguard.stats()["dropped"].get("shutdown") == 1


def test_sdk_module_still_exposes_its_names() -> None:
    assert customerio.CustomerIO is CustomerIO


def test_instrument_after_shutdown_starts_a_fresh_sender(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    client = fake.client()
    instrument()
    cioguard.shutdown(timeout=5)
    instrument()
    client.track("u1", "after_restart", data={})
    assert cioguard.flush(timeout=5)
    assert [event.name for event in fake.events] == ["after_restart"]


def test_pitfalls_error_raises_cio011_before_the_call_is_queued(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    # Explicit opt-in: pitfalls="error" (CIO011 only) and a small queue held full by a slow endpoint.
    from cioguard.instrumentation.instrumentor import active_runtime
    from cioguard.pitfalls import ALL_CODES

    fake.latency = 30.0
    instrument(pitfalls="error", disabled_pitfalls=ALL_CODES - {"CIO011"}, max_queue_size=100)
    runtime = active_runtime()
    assert runtime is not None
    client = fake.client()
    for n in range(90):
        client.track("u1", "tick", data={"n": n})
    runtime._until_queue_check = 1  # the next call checks the fill level: nearly full just now
    client.track("u1", "tick", data={"n": 90})
    engine = runtime.engine
    assert isinstance(engine, DeliveryEngine)  # (the local engine: its fill watch)
    core = engine._core
    assert core.fill.held(core.clock()) < 10.0
    core.fill._high_since -= 60.0  # the engine's watch, a minute on (no sleep)
    runtime._until_queue_check = 1
    with pytest.raises(cioguard.PitfallWarning, match="CIO011"):
        client.track("u1", "tick", data={"n": 91})
    fake.latency = 0.0
    assert cioguard.flush(timeout=40)
    assert sorted(event.data["n"] for event in fake.events) == list(range(91))


def test_an_internal_error_falls_back_to_the_sdk_counted_and_logged_once(
    instrument: Instrument,
    fake: FakeCustomerIO,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cioguard.instrumentation.instrumentor import active_runtime

    instrument()
    runtime = active_runtime()
    assert runtime is not None

    def broken(op: object) -> bool:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(runtime.engine, "submit", broken)
    monkeypatch.setattr(runtime.engine, "submit_snapshot", broken)  # the event calls' fast path
    client = fake.client()
    with caplog.at_level("ERROR", logger="cioguard"):
        assert client.track("u1", "first", data={}).status_code == 200  # the SDK's own response
        assert client.track("u1", "second", data={}).status_code == 200
    assert [event.name for event in fake.events] == ["first", "second"]
    assert cioguard.stats()["fallbacks"] == {"track": 2}
    assert registry.get_sample_value("customerio_fallback_total", {"method": "track"}) == 2
    assert sum("internal error" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.parametrize("pitfalls", ["warn", "off"])  # "warn": the default
def test_a_lone_surrogate_in_an_event_name_or_id_is_refused_at_the_call(
    fake: FakeCustomerIO, registry: CollectorRegistry, pitfalls: str
) -> None:
    """The SDK cannot send it either; accepted, it stalled the whole queue behind it."""
    import warnings

    from cioguard.operations.errors import SerializationError

    cioguard.instrument(track_url=fake.track_url, registry=registry, pitfalls=pitfalls)
    try:
        cio = fake.client()
        cio.identify("u1", email="u1@example.com")
        bad_calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], str]] = [
            (cio.track, ("u1", "bad\ud800name"), {"data": {"a": 1}}, "name"),
            (cio.track, ("u1\ud800", "clicked"), {}, 'identifiers["id"]'),
            (cio.track, ("u1", "clicked"), {"id": "evt\ud800"}, "id"),
            (cio.pageview, ("u1", "/p\ud800"), {}, "name"),
            (cio.backfill, ("u1", "old\ud800", 1_700_000_000), {}, "name"),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (CIO003 for u1\ud800: not the point here)
            for method, args, kwargs, field in bad_calls:
                with pytest.raises(SerializationError, match=re.escape(field)):
                    method(*args, **kwargs)
        cio.track("u1", "clicked", data={"after": True})
        assert cioguard.flush(timeout=10) is True
        stats = cioguard.stats()
        assert stats["delivered"] == 2
        assert stats["errors"] == 0
    finally:
        cioguard.uninstrument(timeout=5)
    assert [e.name for e in fake.events] == ["clicked"]
