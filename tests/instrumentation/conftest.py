from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.testing import FakeCustomerIO

Instrument = Callable[..., None]


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True) as emulator, emulator.trust():
        yield emulator


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def instrument(fake: FakeCustomerIO, registry: CollectorRegistry) -> Iterator[Instrument]:
    """instrument() pointed at the emulator, with a private registry; always uninstrumented after."""

    def make(**options: Any) -> None:
        options.setdefault("track_url", fake.track_url)
        options.setdefault("api_url", fake.api_url)
        options.setdefault("registry", registry)
        options.setdefault("pitfalls", "off")
        options.setdefault("flush_interval", 0.05)
        cioguard.instrument(**options)

    yield make
    cioguard.uninstrument(timeout=5)
