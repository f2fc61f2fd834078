"""Security: no API key, site id, customer id or email in anything cioguard emits.

A representative run (identify/track/pageview/add_device/suppress, an email used as an id, a call
refused for bad data, a 500, a 429 and a 401 from the emulator) is observed through every channel:
span names, attributes and events (in-memory exporter), log records at DEBUG (caplog), metric
labels (registry samples), warning messages and exception messages. None may contain a secret —
unless ``capture_customer_id=True``, where the customer id on spans proves the scanner can see it.
Keys also never appear in any ``repr`` (Endpoint, Operation, engine, runtime, options).
"""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from customerio import CustomerIO
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from reliability_support import report

import cioguard
from cioguard.instrumentation.instrumentor import active_runtime
from cioguard.operations.build import build
from cioguard.operations.calls import bind
from cioguard.testing import FakeCustomerIO

SITE = "site-SECRET-5150"
KEY = "key-SECRET-9f8e7d"
CUSTOMER = "cust-SECRET-1234"
EMAIL = "secret.person@example.com"
SECRETS = (SITE, KEY, CUSTOMER, EMAIL, base64.b64encode(f"{SITE}:{KEY}".encode()).decode())


@pytest.fixture
def emulator() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=False, site_id=SITE, api_key=KEY) as fake:
        yield fake


def representative_run(
    fake: FakeCustomerIO, capture: bool, caplog: pytest.LogCaptureFixture
) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    caught: list[str] = []
    caplog.set_level(logging.DEBUG)
    cioguard.instrument(
        track_url=fake.track_url,
        tracer_provider=provider,
        registry=registry,
        pitfalls="warn",
        flush_interval=0.05,
        max_retries=2,
        capture_customer_id=capture,
    )
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            cio = CustomerIO(SITE, KEY)
            fake.fail_next(1, status=500)
            fake.fail_next(1, status=429, retry_after=0)
            cio.identify(CUSTOMER, email=EMAIL, plan="pro")
            cio.track(CUSTOMER, "order_placed", data={"total": 10})
            cio.pageview(CUSTOMER, "/checkout")
            cio.add_device(CUSTOMER, "device-1", "ios")
            cio.track(EMAIL, "email_as_id")  # CIO004 and CIO003: warnings about this very id
            cio.suppress(CUSTOMER)
            for bad in ({"k": {1, 2}}, {"k": float("inf")}):
                try:
                    cio.track(CUSTOMER, "bad_data", data=bad)
                except (TypeError, ValueError) as exc:
                    caught.append(f"{type(exc).__name__}: {exc}")
            assert cioguard.flush(timeout=15)
            fake.fail_next(3, status=401)
            cio.track(CUSTOMER, "unauthorised")
            assert not cioguard.flush(timeout=15)  # False: the 401 rejected it
            runtime = active_runtime()
            assert runtime is not None
            endpoint = runtime.track_endpoint_for(cio)
            [operation] = build(bind("track", (CUSTOMER, "repr_check"), {}), endpoint)
            reprs = [repr(x) for x in (endpoint, operation, runtime.engine, runtime, runtime.options, cio)]
        caught += [str(w.message) for w in recorded]
    finally:
        cioguard.uninstrument(timeout=5)
        provider.shutdown()
    spans = exporter.get_finished_spans()
    texts = {
        "span": [s.name for s in spans]
        + [f"{k}={v!r}" for s in spans for k, v in (s.attributes or {}).items()]
        + [f"{e.name} {dict(e.attributes or {})}" for s in spans for e in s.events],
        "log": [r.getMessage() for r in caplog.records] + [str(r.exc_info) for r in caplog.records],
        "metric": [
            f"{sample.name}{sample.labels}" for family in registry.collect() for sample in family.samples
        ],
        "warning_or_exception": caught,
        "repr": reprs,
    }
    return {"texts": texts, "spans": len(spans), "warnings": len(recorded), "stats": cioguard.stats()}


def leaks(texts: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    return [
        (kind, secret, text[:120])
        for kind, items in texts.items()
        for text in items
        for secret in SECRETS
        if secret in text
    ]


def test_no_secret_or_personal_data_in_any_output(
    emulator: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    run = representative_run(emulator, capture=False, caplog=caplog)
    texts = run["texts"]
    found = leaks(texts)
    report(
        "security_scan",
        scanned={kind: len(items) for kind, items in texts.items()},
        spans=run["spans"],
        warnings=run["warnings"],
        leaks=len(found),
    )
    # The run really produced output in every channel, including retries, 401 and warnings.
    assert all(texts[kind] for kind in texts), {k: len(v) for k, v in texts.items()}
    assert any("CIO004" in text for text in texts["warning_or_exception"])
    # The set raises TypeError; the inf is CIO014 and sent as null ("warn" mode, README).
    assert sum(1 for text in texts["warning_or_exception"] if "Error" in text) == 1
    assert any(text.startswith("CIO014 event data held") for text in texts["warning_or_exception"])
    assert not found, found


def test_capture_customer_id_puts_the_id_on_spans_only(
    emulator: FakeCustomerIO, caplog: pytest.LogCaptureFixture
) -> None:
    texts = representative_run(emulator, capture=True, caplog=caplog)["texts"]
    found = leaks(texts)
    assert ("span", CUSTOMER) in {(kind, secret) for kind, secret, _ in found}  # the scanner sees it
    assert all(kind == "span" and secret in (CUSTOMER, EMAIL) for kind, secret, _ in found), found
