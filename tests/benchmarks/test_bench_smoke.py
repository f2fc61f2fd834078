"""Smoke test: ``python -m benchmarks --quick`` runs every row group end to end and writes its JSON.

No timing assertions (CI machines are noisy): only that the harness works, every row is accounted
for, rows that ran carry real measurements, and the peers and floors — which need nothing from
cioguard — always produce numbers.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.goals import TARGETS

ROOT = Path(__file__).resolve().parents[2]
QuickRun = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--quiet", "--deadline", "80", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    document: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return process, document


@pytest.mark.slow
def test_quick_run_succeeds_and_writes_json(
    quick_run: QuickRun,
) -> None:
    process, document = quick_run
    assert process.returncode == 0, process.stderr[-6000:]
    assert document, "no JSON written"
    assert {"meta", "rows", "targets"} <= set(document)
    assert document["meta"]["mode"] == "quick"
    assert document["meta"]["nproc"] >= 1
    assert "median" in process.stdout
    assert "targets:" in process.stdout


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


#: Rows that may be ``skipped`` only when their peer library is not installed (the ``bench`` extra).
PEER_MODULES = {"segment": "segment.analytics", "posthog": "posthog"}


@pytest.mark.slow
def test_every_row_ran(quick_run: QuickRun) -> None:
    _, document = quick_run
    groups = {row["group"] for row in document["rows"]}
    assert groups == {"floor", "sdk", "peer", "cioguard", "delivery", "depth", "web"}
    for row in document["rows"]:
        peer = next((name for name in PEER_MODULES if row["name"].startswith(name)), None)
        if peer is not None and not _installed(PEER_MODULES[peer]):
            assert row["status"] == "skipped", row
            continue
        assert row["status"] == "ok", row
        assert row["median"] is not None, row
        assert math.isfinite(row["median"]), row
        assert row["median"] >= 0, row
        assert row["samples"] >= 1, row


@pytest.mark.slow
def test_baselines_always_measured(quick_run: QuickRun) -> None:
    _, document = quick_run
    rows = {row["name"]: row for row in document["rows"]}
    assert rows["bare function call"]["median"] > 0
    assert rows["customerio SDK track, 0 ms"]["median"] > rows["bare function call"]["median"]
    # Every event cioguard accepted reached the server (counted there, not by cioguard).
    for name in ("cioguard delivered events/s, 0 ms", "cioguard queue drain events/s, 50 ms"):
        extra = rows[name]["extra"]
        assert extra["delivered"] == extra["sent"] > 0, extra
        assert extra["dropped"] == 0, extra
    for peer, module in PEER_MODULES.items():
        if _installed(module):
            for payload in ("small", "realistic"):
                name = f"segment track(), {payload}" if peer == "segment" else f"posthog capture(), {payload}"
                extra = rows[name]["extra"]
                assert extra["delivered"] == extra["sent"] > 0, extra
    # Caller-cost rows get x floor and a ratio against each measured peer.
    expected = {"x floor", "vs sdk"} | {f"vs {p}" for p, m in PEER_MODULES.items() if _installed(m)}
    assert set(rows["bare function call"]["ratios"]) == expected
    assert set(rows["cioguard track(), realistic"]["ratios"]) == expected


@pytest.mark.slow
def test_caller_rows_are_per_call_tails_with_the_flush_in_the_window(quick_run: QuickRun) -> None:
    _, document = quick_run
    for row in document["rows"]:
        if row["unit"] != "us/call" or row["status"] != "ok":
            continue
        assert row["median"] <= row["p99"] <= row["p999"], row
        if row["group"] in ("cioguard", "peer"):
            # The window holds every call and the client's own flushes: never below the mean call
            # (the median may sit above the mean when a few calls are fast).
            assert row["extra"]["window_us"] >= row["extra"]["mean_us"], row


@pytest.mark.slow
def test_targets_are_all_evaluated(
    quick_run: QuickRun,
) -> None:
    _, document = quick_run
    assert [t["target"] for t in document["targets"]] == [t.text for t in TARGETS]
    for target in document["targets"]:
        assert target["status"] in {"holds", "misses", "unknown"}
        assert (target["value"] is None) == (target["status"] == "unknown"), target


@pytest.mark.slow
def test_the_readme_table_renders_from_the_run(quick_run: QuickRun) -> None:
    from benchmarks.readme import render

    _, document = quick_run
    text = render(document)
    assert document["meta"]["started_utc"][:10] in text  # dated
    assert "**cioguard `track()`, all pitfall rules on** | realistic |" in text
    assert text.count("\n- ") == len(document["targets"])
