"""Benchmark rows, the printed table (with ratios to each peer) and the JSON result file.

A row is one measured configuration. Caller-cost rows (unit ``us/call``) get a ratio to each peer
baseline: ``peer median / row median``, so ``12.0x`` means twelve times cheaper for the caller than
that peer in the same run. Rows of other units (events/s, ms per request, bytes per event) are
compared only within their own group, in their ``extra`` fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.timing import Stats

CALLER_UNIT = "us/call"

#: Row names that serve as ratio baselines, and the column label of each.
PEERS: dict[str, str] = {
    "customerio SDK track, 0 ms": "vs sdk",
    "segment track()": "vs segment",
    "posthog capture()": "vs posthog",
}


@dataclass
class Row:
    group: str
    name: str
    unit: str
    median: float = math.nan
    p99: float = math.nan
    samples: int = 0
    #: ``ok``, ``skipped`` (a dependency or feature is missing) or ``error``.
    status: str = "ok"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    @classmethod
    def caller(cls, group: str, name: str, stats: Stats, **extra: Any) -> Row:
        """A caller-cost row from per-call ``Stats`` in nanoseconds."""
        return cls(
            group, name, CALLER_UNIT, stats.median_us, stats.p99_us, stats.samples, extra={**extra}
        ).with_calls(stats.calls)

    def with_calls(self, calls: int) -> Row:
        self.extra.setdefault("calls", calls)
        return self

    @classmethod
    def failed(cls, group: str, name: str, unit: str, status: str, note: str) -> Row:
        return cls(group, name, unit, status=status, note=note)


def add_ratios(rows: list[Row]) -> None:
    """Fill ``ratios`` of every caller-cost row against each peer row present and measured."""
    baselines = {
        label: row.median
        for row in rows
        if (label := PEERS.get(row.name)) and row.status == "ok" and row.median > 0
    }
    for row in rows:
        if row.unit != CALLER_UNIT or row.status != "ok" or not row.median > 0:
            continue
        row.ratios = {label: base / row.median for label, base in baselines.items()}


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
    """A plain-text table: group, row, median, p99, unit, one ratio column per peer, notes."""
    labels = list(PEERS.values())
    header = ["group", "row", "median", "p99", "unit", *labels, "note"]
    lines: list[list[str]] = [header]
    for row in rows:
        ratios = [_ratio(row.ratios[label]) if label in row.ratios else "" for label in labels]
        note = row.note if row.status == "ok" else f"{row.status.upper()}: {row.note}"
        lines.append(
            [row.group, row.name, _number(row.median), _number(row.p99), row.unit, *ratios, note[:70]]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {2, 3, *range(5, 5 + len(labels))}
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
