"""The flake8 plugin, run by a real flake8 process that finds it through the installed entry point."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from cioguard.lint.flake8 import CioGuardChecker

SOURCE = """\
from customerio import CustomerIO

cio = CustomerIO("site", "key")


def f(sku: str) -> None:
    cio.track("usr_1", f"viewed_{sku}")
    cio.track("usr_1", "Bad Name")  # noqa: CIO010
"""


def test_checker_protocol() -> None:
    checker = CioGuardChecker(ast.parse(SOURCE), "m.py", SOURCE.splitlines(keepends=True))
    assert checker.name == "cioguard"
    assert checker.version.count(".") == 2
    results = list(checker.run())
    # flake8 itself applies noqa: the plugin reports both, with 0-based columns
    assert [(line, col, msg.split()[0]) for line, col, msg, _ in results] == [
        (7, 23, "CIO006"),
        (8, 23, "CIO010"),
    ]
    assert all(kind is CioGuardChecker for *_, kind in results)


def test_real_flake8_run(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(SOURCE)
    (tmp_path / ".flake8").write_text("[flake8]\nselect = CIO\n")
    result = subprocess.run(
        [sys.executable, "-m", "flake8", "--config", ".flake8", "m.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "m.py:7:24: CIO006 event name is built dynamically (f-string); "
        "use a fixed name and put the variable part in data"
    ]
