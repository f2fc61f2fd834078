"""`make demo` on a fresh machine: a new virtualenv gets only the package and its `demo` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_installs_only_what_the_demo_needs(tmp_path: Path) -> None:
    make = shutil.which("make")
    assert make, "make is part of the documented quick start"
    venv = tmp_path / "venv"
    completed = subprocess.run(
        [make, "demo", f"VENV={venv}", f"PYTHON={sys.executable}", "DEMO_ARGS=--requests 20 --seed 1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "nothing accepted was lost" in completed.stdout
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert {"cioguard", "customerio", "starlette", "uvicorn"} <= installed
    # None of the development toolchain: that is `make test`'s business.
    assert not installed & {"pytest", "mypy", "ruff", "hypothesis", "segment-analytics-python", "posthog"}
