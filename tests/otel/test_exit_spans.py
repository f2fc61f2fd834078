"""Spans of the interpreter-exit flush are exported, whenever the global provider was set.

A ``TracerProvider`` registers its own ``shutdown`` (the final export) with ``atexit`` when it is
built. ``atexit`` runs hooks last registered first, so a provider built after ``instrument()``
would shut down before cioguard's exit flush sends what is queued: the spans of those requests
would be lost. Run as a real process, ending the normal way (no flush in the script).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

APP = """
import cioguard
from customerio import CustomerIO
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Printed(SpanExporter):
    def export(self, spans):
        for span in spans:
            print("SPAN", span.name, flush=True)
        return SpanExportResult.SUCCESS


def set_provider():
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Printed()))
    trace.set_tracer_provider(provider)


if {provider_first!r}:
    set_provider()
cioguard.instrument(track_url={url!r}, flush_interval=30)   # 30 s: only the exit flush sends
if not {provider_first!r}:
    set_provider()
cio = CustomerIO({site!r}, {key!r})
cio.identify("u1", email="ada@example.com")
cio.track("u1", "job_done", data={{}})
"""


@pytest.mark.parametrize("provider_first", [True, False], ids=["provider-before", "provider-after"])
def test_the_exit_flushs_spans_are_exported(tmp_path: Path, provider_first: bool) -> None:
    with FakeCustomerIO(https=False) as fake:
        app = tmp_path / "app.py"
        source = APP.format(
            provider_first=provider_first, url=fake.track_url, site=fake.site_id, key=fake.api_key
        )
        app.write_text(textwrap.dedent(source))
        done = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert len(fake.events) == 1
    spans = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("SPAN ")]
    assert "POST /api/v2/batch" in spans
    assert {"customerio identify", "customerio track"} <= set(spans)
