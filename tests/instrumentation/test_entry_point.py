"""Zero-code instrumentation: ``opentelemetry-instrument python app.py`` patches the SDK."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from cioguard.instrumentation import CustomerIOInstrumentor
from cioguard.testing import FakeCustomerIO

APP = """
from customerio import CustomerIO

cio = CustomerIO({site!r}, {key!r})           # the real Customer.io host: CIOGUARD_TRACK_URL reroutes it
result = cio.track("u1", "zero_code", data={{"source": "entry-point"}})
print("RESULT", repr(result), flush=True)   # background mode: None; delivered by the exit flush
"""


def test_entry_point_is_registered() -> None:
    (found,) = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.name == "customerio"]
    assert found.load() is CustomerIOInstrumentor


@pytest.mark.slow
def test_opentelemetry_instrument_patches_the_sdk_with_zero_code(tmp_path: Path) -> None:
    with FakeCustomerIO(https=True) as fake:
        app = tmp_path / "app.py"
        app.write_text(textwrap.dedent(APP.format(site=fake.site_id, key=fake.api_key)))
        completed = _run_instrumented(
            app,
            CIOGUARD_TRACK_URL=fake.track_url,
            REQUESTS_CA_BUNDLE=str(fake.ca_bundle),
            OTEL_TRACES_EXPORTER="console",
            OTEL_SERVICE_NAME="zero-code-app",
        )
        assert "RESULT None" in completed.stdout
        assert fake.wait_for(lambda: len(fake.events) == 1, timeout=5)
        assert fake.events[0].name == "zero_code"
        assert fake.events[0].data == {"source": "entry-point"}
        names = [span["name"] for span in _console_spans(completed.stdout)]
        assert "customerio track" in names


APP_WITH_OPTIONS = """
import cioguard
from customerio import CustomerIO

cioguard.instrument(track_url={url!r})       # the app's own options win over the zero-code defaults
cio = CustomerIO({site!r}, {key!r})
cio.track("u1", "own_options", data={{}})
print("FLUSHED", cioguard.flush(timeout=10), flush=True)
"""


@pytest.mark.slow
def test_the_apps_own_instrument_options_apply_under_opentelemetry_instrument(tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as env_target, FakeCustomerIO(https=False) as app_target:
        app = tmp_path / "app.py"
        app.write_text(
            textwrap.dedent(
                APP_WITH_OPTIONS.format(
                    url=app_target.track_url, site=app_target.site_id, key=app_target.api_key
                )
            )
        )
        completed = _run_instrumented(app, CIOGUARD_TRACK_URL=env_target.track_url)
        assert "FLUSHED True" in completed.stdout
        assert [event.name for event in app_target.events] == ["own_options"]
        assert env_target.events == []


def _run_instrumented(app: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python app`` with ``env`` over ours (no exporters unless set);
    it must exit 0."""
    environment = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}
    environment.update(OTEL_LOGS_EXPORTER="none", **env)
    instrument_cmd = str(Path(sys.executable).parent / "opentelemetry-instrument")
    completed = subprocess.run(
        [instrument_cmd, sys.executable, str(app)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def _console_spans(stdout: str) -> list[dict[str, object]]:
    """The console exporter prints one JSON object per span; pull them out of the output."""
    spans, depth, start = [], 0, -1
    for index, char in enumerate(stdout):
        if char == "{":
            depth += 1
            if depth == 1:
                start = index
        elif char == "}":
            depth -= 1
            if depth == 0 and start >= 0:
                with contextlib.suppress(json.JSONDecodeError):
                    spans.append(json.loads(stdout[start : index + 1]))
    return [span for span in spans if "name" in span]
