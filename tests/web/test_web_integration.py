"""The middleware and the webhook receiver with the real instrumented SDK against the emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from prometheus_client import CollectorRegistry
from web_helpers import SIGNING_KEY, asgi_request, event_body, signed_headers
from werkzeug.test import Client

import cioguard
from cioguard.asgi import CioGuardMiddleware as AsgiMiddleware
from cioguard.blocked import drain
from cioguard.pitfalls import bounces
from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import WebhookReceiver
from cioguard.wsgi import CioGuardMiddleware as WsgiMiddleware

Instrument = Callable[..., None]
LATENCY = 0.2


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True, latency=LATENCY) as emulator, emulator.trust():
        yield emulator


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def instrument(fake: FakeCustomerIO, registry: CollectorRegistry) -> Iterator[Instrument]:
    def make(**options: Any) -> None:
        options.setdefault("track_url", fake.track_url)
        options.setdefault("registry", registry)
        options.setdefault("pitfalls", "warn")
        options.setdefault("flush_interval", 0.05)
        cioguard.instrument(**options)

    yield make
    cioguard.uninstrument(timeout=5)
    bounces.clear()


def _signup_api(client: Any) -> FastAPI:
    api = FastAPI()

    @api.post("/signup/{plan}")
    async def signup(plan: str) -> dict[str, str]:
        # An async endpoint calling the synchronous SDK: the worst case for blocking.
        client.track("user-1", "signed_up", data={"plan": plan})
        return {"plan": plan}

    return api


_SIGNUP_CALL_LINE = _signup_api.__code__.co_firstlineno + 6  # the client.track line above


def _blocked(registry: CollectorRegistry) -> tuple[float | None, float | None]:
    drain()  # the middleware tallies blocked time and observes it in bulk
    return (
        registry.get_sample_value("customerio_http_request_blocked_seconds_count"),
        registry.get_sample_value("customerio_http_request_blocked_seconds_sum"),
    )


def test_background_mode_answers_well_under_the_api_latency(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(disabled_pitfalls=["CIO003"])
    app = AsgiMiddleware(_signup_api(client), metrics_path=None)
    asgi_request(app, "POST", "/signup/warmup")
    started = time.perf_counter()
    response = asgi_request(app, "POST", "/signup/pro")
    elapsed = time.perf_counter() - started
    assert response.json() == {"plan": "pro"}
    assert elapsed < LATENCY / 2, (
        f"request took {elapsed * 1000:.0f} ms against a {LATENCY * 1000:.0f} ms API"
    )
    count, total = _blocked(registry)
    assert count == 2
    assert total is not None
    assert total < 0.01
    assert cioguard.flush(timeout=5)
    assert [e.name for e in fake.events] == ["signed_up", "signed_up"]


def test_blocking_mode_is_reported_as_cio007_with_the_route(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(mode="blocking", disabled_pitfalls=["CIO003"])
    app = AsgiMiddleware(_signup_api(client), metrics_path=None)
    started = time.perf_counter()
    with pytest.warns(cioguard.BlockingCallWarning, match="CIO007") as caught:
        response = asgi_request(app, "POST", "/signup/pro")
    elapsed = time.perf_counter() - started
    # The warning names the endpoint's line (the SDK call inside the view), not cioguard's.
    assert (caught[0].filename, caught[0].lineno) == (__file__, _SIGNUP_CALL_LINE)
    assert response.status_code == 200
    assert elapsed >= LATENCY
    count, total = _blocked(registry)
    assert count == 1
    assert total is not None
    assert total >= LATENCY
    assert registry.get_sample_value("customerio_pitfalls_total", {"code": "CIO007"}) == 1
    assert [e.name for e in fake.events] == ["signed_up"]


def test_flask_blocking_call_is_measured_through_the_wsgi_middleware(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(mode="blocking", disabled_pitfalls=["CIO003"])
    flask_app = Flask(__name__)

    @flask_app.post("/orders/<order_id>/paid")
    def paid(order_id: str) -> dict[str, str]:
        client.track("user-1", "order_paid", data={"order_id": order_id})
        return {"order": order_id}

    flask_app.wsgi_app = WsgiMiddleware(flask_app.wsgi_app, metrics_path=None)  # type: ignore[method-assign]
    client_app = Client(flask_app)
    with pytest.warns(cioguard.BlockingCallWarning):
        response = client_app.post("/orders/o-9/paid")
    response.close()
    assert response.json == {"order": "o-9"}
    count, total = _blocked(registry)
    assert count == 1
    assert total is not None
    assert total >= LATENCY


def test_bounce_webhook_suppresses_through_the_background_sender(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(disabled_pitfalls=["CIO003", "CIO009"])
    assert not bounces.has_receiver()
    receiver = WebhookReceiver(SIGNING_KEY, client=client)
    assert bounces.has_receiver()
    body = event_body(
        metric="bounced",
        data={"customer_id": "user-7", "identifiers": {"id": "user-7"}, "recipient": "Seven@example.com"},
    )
    started = time.perf_counter()
    response = asgi_request(receiver.asgi_app(), "POST", "/", body, signed_headers(body))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < LATENCY  # the suppress call was only enqueued
    assert bounces.is_bounced("user-7")
    assert bounces.is_bounced("seven@example.com")
    assert registry.get_sample_value("customerio_webhook_events_total", {"metric": "bounced"}) == 1
    assert cioguard.flush(timeout=5)
    assert fake.suppressions == {"user-7"} or any("user-7" in key for key in fake.suppressions)
    forged = asgi_request(receiver.asgi_app(), "POST", "/", body, signed_headers(body, key="other"))
    assert forged.status_code == 401
    assert registry.get_sample_value("customerio_webhook_rejected_total", {"reason": "signature"}) == 1


def test_metrics_path_serves_the_registry_given_to_instrument(
    instrument: Instrument, fake: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    client = fake.client()
    instrument(disabled_pitfalls=["CIO003"])
    asgi_app = AsgiMiddleware(_signup_api(client), registry=registry)
    asgi_request(asgi_app, "POST", "/signup/free")
    scrape = asgi_request(asgi_app, "GET", "/metrics").text
    assert "customerio_http_request_blocked_seconds_count 1.0" in scrape
    assert "# TYPE customerio_calls_total counter" in scrape  # the instrumentation's registry

    flask_app = Flask(__name__)
    wsgi_app = WsgiMiddleware(flask_app.wsgi_app, registry=registry)
    wsgi_scrape = Client(wsgi_app).get("/metrics").get_data(as_text=True)
    assert "customerio_http_request_blocked_seconds_count 1.0" in wsgi_scrape


def _run_lifespan(app: Any) -> list[str]:
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    asyncio.run(asyncio.wait_for(app({"type": "lifespan"}, receive, send), 15))
    return sent


def test_lifespan_shutdown_delivers_what_is_queued(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(flush_interval=3600, disabled_pitfalls=["CIO003"])
    app = AsgiMiddleware(_signup_api(client), shutdown_timeout=5)
    for plan in ("free", "pro", "team"):
        assert asgi_request(app, "POST", f"/signup/{plan}").status_code == 200
    assert _run_lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # No waiting: delivery finished before the server was told shutdown was complete.
    assert sorted(e.data["plan"] for e in fake.events) == ["free", "pro", "team"]


@pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")
def test_repeated_testclient_lifespans_and_a_later_call_all_deliver(
    instrument: Instrument, fake: FakeCustomerIO
) -> None:
    from starlette.testclient import TestClient

    client = fake.client()
    instrument(flush_interval=3600, disabled_pitfalls=["CIO003"])
    app = AsgiMiddleware(_signup_api(client))  # the defaults: flush on lifespan shutdown
    for plan in ("free", "pro", "team"):  # e.g. three tests, each entering the app's lifespan
        with TestClient(app) as http:
            assert http.post(f"/signup/{plan}").status_code == 200
        # Delivered when the block's lifespan ended, before any later work.
        assert fake.events[-1].data["plan"] == plan
    client.track("user-1", "after_the_server", data={"plan": "later"})
    assert cioguard.flush(timeout=5)
    assert [e.data["plan"] for e in fake.events] == ["free", "pro", "team", "later"]
    assert not any(cioguard.stats()["dropped"].values())


def test_explicit_shutdown_still_stops_cioguard(instrument: Instrument, fake: FakeCustomerIO) -> None:
    client = fake.client()
    instrument(flush_interval=3600, disabled_pitfalls=["CIO003"])
    app = AsgiMiddleware(_signup_api(client))
    asgi_request(app, "POST", "/signup/free")
    _run_lifespan(app)
    cioguard.shutdown(timeout=5)
    client.track("user-1", "too_late")
    assert [e.name for e in fake.events] == ["signed_up"]
