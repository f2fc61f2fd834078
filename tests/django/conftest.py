"""Django is set up once for this folder with the test project (cioguard not instrumented at start)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import django
from cioguard.blocked import drain

HERE = Path(__file__).parent
# --import-mode=importlib puts no test folder on sys.path: make ``project`` importable.
sys.path.insert(0, str(HERE))
os.environ.pop("TEST_CIOGUARD", None)
_had_settings = "DJANGO_SETTINGS_MODULE" in os.environ
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django.setup()
if not _had_settings:
    # Settings are loaded now; leaving the variable would leak this test project into every later
    # subprocess of the session (Celery's Django fix-up then fails to import ``project``).
    del os.environ["DJANGO_SETTINGS_MODULE"]


@pytest.fixture(autouse=True)
def _no_pending_blocked_time() -> None:
    """Blocked time is tallied and observed in bulk: earlier tests' values go to earlier recorders."""
    drain()
