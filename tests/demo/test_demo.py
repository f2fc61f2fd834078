"""`cioguard demo` as a user runs it: a real subprocess, then its HTML report rendered in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    report = tmp_path_factory.mktemp("demo") / "demo.html"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cioguard",
            "demo",
            "--requests",
            "60",
            "--seed",
            "3",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    return completed, report


def test_demo_exits_zero_and_prints_the_comparison(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, _ = demo_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "blocking SDK" in out
    assert "cioguard" in out
    p50 = re.search(r"p50\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.,]+)x", out)
    assert p50 is not None, out
    blocking_ms, guarded_ms = float(p50.group(1)), float(p50.group(2))
    assert blocking_ms > guarded_ms  # the whole point, measured over real HTTP in this run
    assert "nothing accepted was lost" in out
    for code in ("CIO002", "CIO004", "CIO006"):  # the deliberate mistakes, each reported with its line
        assert re.search(rf"{code} x\d+\s+\S*cioguard/demo/app.py:\d+", out), out
    assert "/metrics" in out
    assert "http://" not in out  # no URL that is dead once the run ends (only --serve keeps one up)
    assert "60 web requests per phase" in out
    assert all(len(line) <= 100 for line in out.splitlines())  # wrapped at word boundaries
    assert "cioguard/pitfalls/" not in out
    assert "__main__.py" not in out
    # a pip user has neither examples/ nor dashboards/: point at what the wheel ships
    assert "examples/" not in out
    assert "dashboards/" not in out
    assert "cioguard dashboards export" in out
    bar = [line for line in completed.stderr.splitlines() if line.strip()]
    assert [line.split("[")[0].strip() for line in bar] == ["blocking SDK", "cioguard"]  # nothing cuts in
    assert all(line.endswith("60/60") for line in bar)


def _colour_share(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 40) -> float:
    """Share of pixels close to ``rgb`` (enough to see that a chart series was drawn)."""
    rgb_image = image.convert("RGB")
    raw = rgb_image.tobytes()
    pixels = len(raw) // 3
    hits = sum(
        1
        for i in range(0, len(raw), 3)
        if abs(raw[i] - rgb[0]) <= tolerance
        and abs(raw[i + 1] - rgb[1]) <= tolerance
        and abs(raw[i + 2] - rgb[2]) <= tolerance
    )
    return hits / pixels


def test_report_renders_its_charts_in_headless_chromium(
    demo_run: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    completed, report = demo_run
    assert completed.returncode == 0
    page = report.read_text()
    assert page.count("<svg") == 4
    # Self-contained: nothing is loaded from anywhere (no scripts, no remote src/href).
    assert "<script" not in page
    assert re.search(r"""(src|href)\s*=\s*["']?\w+://""", page) is None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is installed by `make test`"
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1360,1100",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot)
    assert image.size == (1360, 1100)
    # The latency chart's red (blocking) and green (cioguard) points, and the pitfall bars, are drawn.
    assert _colour_share(image, (0xD6, 0x27, 0x28)) > 0.0005
    assert _colour_share(image, (0x2C, 0xA0, 0x2C)) > 0.0005
    assert _colour_share(image, (0x94, 0x67, 0xBD)) > 0.0005


def _repeatable_lines(out: str) -> list[str]:
    """What a seed must fix: the pitfall lines (code, count, place) and the operations accepted."""
    return [
        line.strip()
        for line in out.splitlines()
        if re.match(r"\s+CIO\d{3} x\d+", line) or "operations accepted" in line
    ]


def test_the_same_seed_gives_the_same_findings_and_operations(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    first, _ = demo_run
    again = subprocess.run(
        [sys.executable, "-m", "cioguard", "demo", "--requests", "60", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    lines = _repeatable_lines(first.stdout)
    assert any(line.startswith("CIO002 x1") for line in lines)
    assert _repeatable_lines(again.stdout) == lines
