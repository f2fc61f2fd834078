"""``opentelemetry-instrument python app.py`` run as a user runs it, in each exporter set-up.

The app builds its client against the emulator's host directly, so whether or not cioguard patched
the SDK, no request leaves 127.0.0.1: patched, ``track()`` returns ``None`` and the event arrives in
a ``/api/v2/batch`` request from cioguard's sender; unpatched, the SDK's own ``/api/v1`` request
arrives and ``track()`` returns its response.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from otel_support import OtlpSink, console_spans

from cioguard.testing import FakeCustomerIO

pytestmark = pytest.mark.slow

APP = """
from customerio import CustomerIO

cio = CustomerIO({site!r}, {key!r}, host="127.0.0.1", port={port})
result = cio.track("u1", "zero_code", data={{"source": "opentelemetry-instrument"}})
print("RESULT", type(result).__name__, flush=True)   # NoneType when cioguard queued it
"""


def run_instrumented(
    fake: FakeCustomerIO, tmp_path: Path, **otel_env: str
) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP.format(site=fake.site_id, key=fake.api_key, port=fake.port)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CIOGUARD_"))}
    env.update(
        CIOGUARD_TRACK_URL=fake.track_url,
        REQUESTS_CA_BUNDLE=str(fake.ca_bundle),
        OTEL_SERVICE_NAME="zero-code-app",
        **otel_env,
    )
    command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(app)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return completed


def paths(fake: FakeCustomerIO) -> list[str]:
    return [request.path for request in fake.requests]


def test_without_an_otlp_exporter_the_defaults_abort_before_cioguard_loads(tmp_path: Path) -> None:
    """The trap the README warns about: OTel's default exporter (OTLP/gRPC) is not installed."""
    installed = {ep.name for ep in entry_points(group="opentelemetry_traces_exporter")}
    assert "otlp_proto_grpc" not in installed, "this case needs the gRPC OTLP exporter absent"
    with FakeCustomerIO(https=True) as fake:
        completed = run_instrumented(fake, tmp_path)
        assert "Failed to auto initialize OpenTelemetry" in completed.stderr
        assert "RESULT Response" in completed.stdout  # the SDK ran unpatched, blocking
        assert paths(fake) == ["/api/v1/customers/u1/events"]


def test_without_an_otlp_exporter_console_traces_work(tmp_path: Path) -> None:
    """The README's settings: console traces, no metrics/logs exporter."""
    with FakeCustomerIO(https=True) as fake:
        completed = run_instrumented(
            fake,
            tmp_path,
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        assert "RESULT NoneType" in completed.stdout
        assert paths(fake) == ["/api/v2/batch"]  # the exit flush delivered it through cioguard
        assert [event.name for event in fake.events] == ["zero_code"]
        spans = {span["name"]: span for span in console_spans(completed.stdout)}
        assert {"customerio track", "POST /api/v2/batch"} <= set(spans)
        assert spans["customerio track"]["kind"] == "SpanKind.PRODUCER"
        send = spans["POST /api/v2/batch"]
        assert send["attributes"]["server.address"] == "127.0.0.1"
        assert send["attributes"]["messaging.batch.message_count"] == 1
        assert send["links"][0]["context"]["span_id"] == spans["customerio track"]["context"]["span_id"]


def test_with_an_otlp_exporter_spans_go_to_the_collector(tmp_path: Path) -> None:
    """OTLP/HTTP installed (a dev dependency): the default set-up with the protocol chosen works."""
    with FakeCustomerIO(https=True) as fake, OtlpSink() as collector:
        completed = run_instrumented(
            fake,
            tmp_path,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_METRIC_EXPORT_INTERVAL="100",
        )
        assert "RESULT NoneType" in completed.stdout
        assert paths(fake) == ["/api/v2/batch"]
        assert {"customerio track", "POST /api/v2/batch"} <= set(collector.span_names())
        assert "customerio.calls" in collector.metric_names()
        assert "http.client.request.duration" in collector.metric_names()


SIGTERM_APP = """
import time
from customerio import CustomerIO

cio = CustomerIO({site!r}, {key!r}, host="127.0.0.1", port={port})
cio.track("u1", "zero_code", data={{"source": "sigterm"}})
print("READY", flush=True)
time.sleep(30)   # a server waiting for work: SIGTERM (docker stop, systemd) ends it
"""


def test_sigterm_exports_the_spans_of_what_it_delivers(tmp_path: Path) -> None:
    """A death by SIGTERM runs no atexit, so OpenTelemetry's own export never runs: cioguard's
    SIGTERM flush exports the pending spans after it delivered (0 spans came out before)."""
    app = tmp_path / "server.py"
    with FakeCustomerIO(https=True) as fake:
        app.write_text(
            textwrap.dedent(SIGTERM_APP.format(site=fake.site_id, key=fake.api_key, port=fake.port))
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CIOGUARD_"))}
        env.update(
            CIOGUARD_TRACK_URL=fake.track_url,
            CIOGUARD_FLUSH_INTERVAL="30",  # still queued at SIGTERM: only the exit flush sends it
            REQUESTS_CA_BUNDLE=str(fake.ca_bundle),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(app)]
        with subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "READY", proc.stderr.read() if proc.stderr else ""
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGTERM, err
        assert [event.name for event in fake.events] == ["zero_code"]
    names = {span["name"] for span in console_spans(out)}
    assert {"customerio track", "POST /api/v2/batch"} <= names, out
