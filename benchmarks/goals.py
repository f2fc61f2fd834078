"""The performance targets of issue 10, checked against a run's rows.

Each target names the row (and field) it reads; a target whose row is missing or failed is
``unknown``, never silently "met". The printed list says which targets hold in this run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        value = getattr(row, key) if key in ("median", "p99") else row.extra.get(key)
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


TARGETS = (
    Target("caller cost, no tracer: median <= 4 us", _field("cioguard bg, no tracer"), 4.0, "max"),
    Target(
        "caller cost >= 10x cheaper than segment",
        _field("cioguard bg, no tracer", "ratio:vs segment"),
        10.0,
        "min",
    ),
    Target(
        "caller cost, OTel spans recorded: median <= 20 us",
        _field("cioguard bg, OTel SDK spans"),
        20.0,
        "max",
    ),
    Target(
        "delivered events/s end to end at 0 ms >= 100 000",
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
    Target(
        "queue drain events/s at 0 ms >= 100 000",
        _field("cioguard queue drain events/s, 0 ms"),
        100_000,
        "min",
    ),
    Target(
        "queue drain events/s at 50 ms >= 50 000",
        _field("cioguard queue drain events/s, 50 ms"),
        50_000,
        "min",
    ),
    Target(
        "<= 1 request per 1 000 events (0 ms)", _field("cioguard requests per 1000 events, 0 ms"), 1.0, "max"
    ),
    Target(
        "<= 1 request per 1 000 events (50 ms)",
        _field("cioguard requests per 1000 events, 50 ms"),
        1.0,
        "max",
    ),
    Target(
        "Starlette /track p99 <= +0.2 ms over no call",
        _field("starlette /track, cioguard bg + middleware, 50 ms", "p99_over_no_call_ms"),
        0.2,
        "max",
    ),
    Target(
        "middleware overhead <= 5 % (median)",
        _field("starlette trivial endpoint, CioGuardMiddleware", "overhead_pct"),
        5.0,
        "max",
    ),
    Target("<= 600 B per queued small event", _largest_depth_memory, 600.0, "max"),
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
