"""OpenTelemetry tests: make ``otel_support`` importable (the suite runs with --import-mode=importlib),
and the real ``promtool`` the metrics tests check expositions with."""

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make system-deps` (Debian package prometheus)")
    return path
