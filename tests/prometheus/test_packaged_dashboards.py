"""The dashboard, alert rules and runbooks ship in the wheel; `cioguard dashboards export DIR` writes them.

The slow test builds the wheel, installs it (``--no-deps``: the command imports only the standard
library) into a fresh venv and runs the installed ``cioguard`` script there, far from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from promql_sources import ROOT

from cioguard.cli import main as cli_main
from cioguard.dashboards_export import FILES

PACKAGED = {f"cioguard/dashboards/{name}" for name in FILES}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make system-deps` (Debian package prometheus)")
    return path


def check_exported(directory: Path) -> None:
    """The exported files are the repository's, and promtool accepts the rules and their tests."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)
    for name, relative in FILES.items():
        assert (directory / name).read_bytes() == (ROOT / relative).read_bytes(), name
    assert json.loads((directory / "cioguard.json").read_text(encoding="utf-8"))["uid"]
    checked = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_export_from_the_source_checkout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new" / "monitoring"  # created, parents too
    assert cli_main(["dashboards", "export", str(target)]) == 0
    assert capsys.readouterr().out.split() == [str(target / name) for name in FILES]
    (target / "alerts.yml").write_text("stale", encoding="utf-8")
    assert cli_main(["dashboards", "export", str(target)]) == 0  # re-export replaces
    check_exported(target)


def test_export_into_a_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert cli_main(["dashboards", "export", str(blocker)]) == 2
    assert "cioguard dashboards:" in capsys.readouterr().err


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_exports_rules_promtool_accepts(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("cioguard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert set(archive.namelist()) >= PACKAGED

    # A fresh venv; this interpreter's pip installs into it (`pip --python`), sparing ensurepip's ~7 s.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(bin_dir / "python"),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(bin_dir / "cioguard"), *args], cwd=work, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    # The installed copies come from the venv's site-packages, not from this repository.
    assert all(str(venv) in line for line in run("dashboards", "path").splitlines())
    run("dashboards", "export", "monitoring")
    check_exported(work / "monitoring")
