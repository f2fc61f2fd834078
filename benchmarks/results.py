"""Benchmark rows, the printed table (with ratios to the floor and each peer) and the JSON file.

A row is one measured configuration. Caller-cost rows (unit ``us/call``) carry the per-call
median, p99 and p99.9 and the window cost per call (calls plus the client's own flushes, see
:mod:`benchmarks.timing`). They get ``x floor`` = ``row median / floor median`` (the floor is a
``wrapt`` wrapper that appends to a deque: what any wrapt-based background design must pay) and a
ratio to each peer on the *same payload*: ``peer median / row median``, so ``12x`` in ``vs segment``
means twelve times cheaper for the caller than Segment's ``track()`` in the same run. Rows of other
units (events/s, ms per request, bytes per event) are compared only within their own group.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.timing import Stats

CALLER_UNIT = "us/call"

#: The floor row: ``x floor`` of every caller-cost row is its median over this row's.
FLOOR = "wrapt wrapper + deque.append"
#: Baselines (``Row.baseline``) and their column labels; matched on the row's payload.
PEERS: dict[str, str] = {"segment": "vs segment", "posthog": "vs posthog", "sdk": "vs sdk"}


@dataclass
class Row:
    group: str
    name: str
    unit: str
    median: float = math.nan
    p99: float = math.nan
    samples: int = 0
    p999: float = math.nan
    #: ``small`` / ``realistic`` for caller rows that send event data; ratios match on it.
    payload: str = ""
    #: ``segment`` / ``posthog`` / ``sdk`` when this row is a peer baseline.
    baseline: str = ""
    #: ``ok``, ``skipped`` (a dependency or feature is missing) or ``error``.
    status: str = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    @classmethod
    def caller(
        cls, group: str, name: str, stats: Stats, *, payload: str = "", baseline: str = "", **extra: Any
    ) -> Row:
        """A caller-cost row from per-call ``Stats`` in nanoseconds."""
        row = cls(
            group,
            name,
            CALLER_UNIT,
            stats.median_us,
            stats.p99_us,
            stats.samples,
            p999=stats.p999_us,
            payload=payload,
            baseline=baseline,
            extra={"window_us": stats.window_us, "mean_us": stats.mean_ns / 1000, **extra},
        )
        return row.with_calls(stats.calls)

    def with_calls(self, calls: int) -> Row:
        self.extra.setdefault("calls", calls)
        return self

    @classmethod
    def failed(cls, group: str, name: str, unit: str, status: str, note: str) -> Row:
        return cls(group, name, unit, status=status, note=note)


def add_ratios(rows: list[Row]) -> None:
    """Fill ``ratios`` of every caller-cost row: ``x floor`` and each peer on the same payload."""
    measured = [r for r in rows if r.unit == CALLER_UNIT and r.status == "ok" and r.median > 0]
    floor = next((r.median for r in measured if r.name == FLOOR), None)
    baselines = {(r.baseline, r.payload): r.median for r in measured if r.baseline}
    for row in measured:
        ratios: dict[str, float] = {}
        if floor is not None:
            ratios["x floor"] = row.median / floor
        for baseline, label in PEERS.items():
            base = baselines.get((baseline, row.payload or "small"), baselines.get((baseline, "")))
            if base is not None:
                ratios[label] = base / row.median
        row.ratios = ratios


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 100_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float) -> str:
    if value >= 10:
        return f"{value:,.0f}x"
    if value >= 1:
        return f"{value:.1f}x"
    return f"{value:.2g}x"


def format_table(rows: list[Row]) -> str:
    """A plain-text table: row, payload, median, p99, p99.9, window/call, unit, ratios, notes."""
    labels = ["x floor", *PEERS.values()]
    header = ["group", "row", "payload", "median", "p99", "p99.9", "window", "unit", *labels, "note"]
    lines: list[list[str]] = [header]
    for row in rows:
        ratios = [_ratio(row.ratios[label]) if label in row.ratios else "" for label in labels]
        note = row.note if row.status == "ok" else f"{row.status.upper()}: {row.note}"
        window = row.extra.get("window_us", math.nan) if row.unit == CALLER_UNIT else math.nan
        lines.append(
            [
                row.group,
                row.name,
                row.payload,
                _number(row.median),
                _number(row.p99),
                _number(row.p999),
                _number(float(window)),
                row.unit,
                *ratios,
                note[:60],
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {3, 4, 5, 6, *range(8, 8 + len(labels))}
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def _clean(value: Any) -> Any:
    # JSON has no NaN: a missing measurement becomes null.
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, rows: list[Row], meta: dict[str, Any], goals: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "rows": [asdict(row) for row in rows], "targets": goals}
    path.write_text(json.dumps(_clean(document), indent=2, sort_keys=False) + "\n")
