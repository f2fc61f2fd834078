"""What an operator sees: outage warnings with cause and fix, TLS failures as ``error_type="tls"``,
queue gauges from the start and on intake (real HTTP: an HTTPS emulator, a refused port, a sink)."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sink import Reply, Sink, make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine
from cioguard.operations.model import Endpoint
from cioguard.telemetry.prometheus import PrometheusRecorder
from cioguard.testing import FakeCustomerIO

FAST_RETRIES = {"retry_base": 0.0, "retry_cap": 0.05, "flush_interval": 0.0}


def start(engines: list[DeliveryEngine], registry: CollectorRegistry, **options: Any) -> DeliveryEngine:
    config = DeliveryConfig(**options)
    engine = DeliveryEngine(config, recorder=PrometheusRecorder(registry))
    engines.append(engine)
    return engine


def endpoint_at(url: str) -> Endpoint:
    return Endpoint(api="track", base_url=url, auth_header="Basic c2l0ZTprZXk=", label="track")


def wait_for_outage(engine: DeliveryEngine) -> None:
    event = threading.Event()
    for _ in range(200):
        if engine.stats()["outage"]:
            return
        event.wait(0.02)
    raise AssertionError(f"no outage: {engine.stats()}")


def outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    return [m for m in messages if "Fix:" in m]


# urllib3 leaves the socket of a failed handshake to the garbage collector (a ResourceWarning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_untrusted_certificate_is_a_tls_error_and_the_outage_warning_names_it(
    engines: list[DeliveryEngine], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    registry = CollectorRegistry()
    with FakeCustomerIO(https=True) as fake:  # its CA is not trusted here
        engine = start(engines, registry, **FAST_RETRIES)
        endpoint = endpoint_at(fake.track_url)
        for i in range(6):
            engine.submit(make_op(endpoint, person=f"p{i}", route="v1"))
        wait_for_outage(engine)
        assert not fake.requests  # nothing got through the handshake
    tls = sum(
        s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "customerio_requests_total" and s.labels.get("error_type") == "tls"
    )
    assert tls >= 5
    warnings = outage_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "certificate verify failed" in warnings[0]
    assert "REQUESTS_CA_BUNDLE" in warnings[0]


def test_refused_connection_outage_warning_names_the_cause(
    engines: list[DeliveryEngine], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # released: nothing listens there
    registry = CollectorRegistry()
    engine = start(engines, registry, **FAST_RETRIES)
    for i in range(6):
        engine.submit(make_op(endpoint_at(f"http://127.0.0.1:{port}"), person=f"p{i}", route="v1"))
    wait_for_outage(engine)
    warnings = outage_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "connection refused" in warnings[0]
    assert "track_url" in warnings[0]


def test_queue_gauges_are_exported_before_the_first_call(engines: list[DeliveryEngine]) -> None:
    registry = CollectorRegistry()
    start(engines, registry, max_queue_size=1234)
    assert registry.get_sample_value("customerio_queue_capacity") == 1234
    assert registry.get_sample_value("customerio_queue_size") == 0


def test_queue_size_grows_on_intake_while_the_sender_is_stuck(
    sink: Sink, endpoint: Endpoint, engines: list[DeliveryEngine]
) -> None:
    sink.default = Reply(delay=1.5)  # every request hangs: only intake can report the queue
    registry = CollectorRegistry()
    engine = start(engines, registry, lanes=2, flush_interval=0.0, request_timeout=5.0)
    engine.submit(make_op(endpoint, person="first"))
    assert not engine.flush(0.2)  # one sender is now stuck in that request
    for i in range(50):
        engine.submit(make_op(endpoint, person=f"p{i}"))
    assert not engine.flush(0.3)  # the other takes the inbox in (and gets stuck in turn)
    size = registry.get_sample_value("customerio_queue_size")
    assert size is not None
    assert size >= 50  # no request has ended: intake reported it
