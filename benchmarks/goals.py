"""The performance targets (issue 17's table first), checked against a run's rows.

Each target names the row (and field) it reads; a target whose row is missing or failed is
``unknown``, never silently "met". Ratios are taken between rows of the same run, so a slow or
busy machine moves both sides. The printed list says which targets hold in this run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.cioguard_rows import HEADLINE, SPANS
from benchmarks.results import Row


@dataclass(frozen=True)
class Target:
    text: str
    #: Picks the measured value out of the rows (``None`` when it is not available).
    read: Callable[[list[Row]], float | None]
    threshold: float
    #: ``max``: the value must be at most the threshold; ``min``: at least.
    kind: str


def _row(rows: list[Row], name: str) -> Row | None:
    return next((r for r in rows if r.name == name and r.status == "ok"), None)


def _field(name: str, key: str = "median") -> Callable[[list[Row]], float | None]:
    def read(rows: list[Row]) -> float | None:
        row = _row(rows, name)
        if row is None:
            return None
        value = getattr(row, key) if key in ("median", "p99", "p999") else row.extra.get(key)
        if key.startswith("ratio:"):
            value = row.ratios.get(key.split(":", 1)[1])
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    return read


def _largest_depth_memory(rows: list[Row]) -> float | None:
    candidates = [
        r for r in rows if r.status == "ok" and r.name.startswith("cioguard memory per queued event, 100 B")
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda r: int(r.extra.get("depth", 0))).median


def _over(name: str, base: str) -> Callable[[list[Row]], float | None]:
    """``name``'s median over ``base``'s median (same run)."""

    def read(rows: list[Row]) -> float | None:
        row, other = _row(rows, name), _row(rows, base)
        if row is None or other is None or not other.median > 0:
            return None
        return row.median / other.median

    return read


TARGETS = (
    Target(
        "track() median, realistic, rules on, sender live: <= 4x the wrapt+deque.append floor",
        _field(HEADLINE, "ratio:x floor"),
        4.0,
        "max",
    ),
    Target(
        "same row >= 10x faster than Segment's track() (realistic payload)",
        _field(HEADLINE, "ratio:vs segment"),
        10.0,
        "min",
    ),
    Target(
        "same with an OTel SDK TracerProvider recording: <= 1.5x without",
        _over(SPANS, HEADLINE),
        1.5,
        "max",
    ),
    Target("p99.9 caller latency with the sender busy <= 200 us", _field(HEADLINE, "p999"), 200.0, "max"),
    Target(
        "delivered events/s end to end (caller + sender, one process) at 0 ms >= 100 000",
        _field("cioguard delivered events/s, 0 ms"),
        100_000,
        "min",
    ),
    Target(
        "delivered events/s end to end at 50 ms >= 50 000",
        _field("cioguard delivered events/s, 50 ms"),
        50_000,
        "min",
    ),
    Target("memory per queued small event <= 400 B", _largest_depth_memory, 400.0, "max"),
    Target(
        "middleware overhead <= 5 % (ASGI app called directly; not the uvicorn req/s target)",
        _field("starlette trivial endpoint, CioGuardMiddleware", "overhead_pct"),
        5.0,
        "max",
    ),
    Target(
        "queue drain events/s (sender alone) at 0 ms >= 100 000",
        _field("cioguard queue drain events/s, 0 ms"),
        100_000,
        "min",
    ),
    Target(
        "<= 1 request per 1 000 events (0 ms)", _field("cioguard requests per 1000 events, 0 ms"), 1.0, "max"
    ),
    Target(
        "Starlette /track p99 <= +0.2 ms over no call",
        _field("starlette /track, cioguard bg + middleware, 50 ms", "p99_over_no_call_ms"),
        0.2,
        "max",
    ),
)


def evaluate(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for target in TARGETS:
        value = target.read(rows)
        if value is None:
            status = "unknown"
        elif target.kind == "max":
            status = "holds" if value <= target.threshold else "misses"
        else:
            status = "holds" if value >= target.threshold else "misses"
        out.append({"target": target.text, "threshold": target.threshold, "value": value, "status": status})
    return out


def format_goals(checked: list[dict[str, Any]]) -> str:
    lines = ["targets:"]
    for item in checked:
        value = item["value"]
        shown = "-" if value is None else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        lines.append(f"  [{item['status']:>7}] {item['target']}  (measured {shown})")
    return "\n".join(lines)
