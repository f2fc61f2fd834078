"""``cioguard demo --report demo.html``: a self-contained page of charts (inline SVG, no scripts).

Opens offline in any browser: no JavaScript, fonts or images from the network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from cioguard.demo.runner import DemoOutcome
from cioguard.demo.summary import render_summary

WIDTH, HEIGHT, PAD = 640, 260, 48
COLOURS = {
    "blocking SDK": "#d62728",
    "cioguard": "#2ca02c",
    "accepted": "#1f77b4",
    "delivered": "#2ca02c",
    "rate_limited": "#d62728",
    "retries": "#ff7f0e",
}

Series = tuple[str, Sequence[tuple[float, float]]]


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0, step, 2*step … up to the first multiple of a 1-2-5 step at or above ``top``.

    Each label then names exactly the value at its position (no rounded "122" drawn at 121.5).
    """
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _x_ticks(x_top: float) -> list[tuple[float, str]]:
    return [(PAD + x / x_top * (WIDTH - PAD - 12), _label(x)) for x in nice_ticks(x_top, 6)]


def _axes(
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: list[tuple[float, str]],
    y_ticks: list[tuple[float, str]],
) -> list[str]:
    parts = [
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 12}" y2="{HEIGHT - PAD}" class="axis"/>',
        f'<line x1="{PAD}" y1="28" x2="{PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 10}" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">'
        f"{html.escape(y_label)}</text>",
    ]
    for x, label in x_ticks:
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{html.escape(label)}</text>'
        )
        parts.append(
            f'<line x1="{x:.1f}" y1="{HEIGHT - PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD + 4}" class="axis"/>'
        )
    for y, label in y_ticks:
        parts.append(f'<text x="{PAD - 4}" y="{y + 4:.1f}" text-anchor="end">{html.escape(label)}</text>')
        parts.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - 12}" y2="{y:.1f}" class="grid"/>')
    return parts


def _legend(names: list[str]) -> list[str]:
    return [
        f'<rect x="{WIDTH - 120}" y="{30 + 16 * i}" width="10" height="10" '
        f'fill="{COLOURS.get(name, "#555")}"/>'
        f'<text x="{WIDTH - 105}" y="{39 + 16 * i}">{html.escape(name)}</text>'
        for i, name in enumerate(names)
    ]


def scatter_log(title: str, series: list[Series], y_label: str) -> str:
    """Points over time on a log-scaled y axis (latency)."""
    points = [p for _, values in series for p in values]
    x_max = nice_ticks(max((x for x, _ in points), default=1.0), 6)[-1]
    y_min, y_max = 0.1, max((y for _, y in points), default=1.0) * 1.5
    low, high = math.log10(y_min), math.log10(max(y_max, 1.0))

    def ys(value: float) -> float:
        fraction = (math.log10(max(value, y_min)) - low) / (high - low)
        return HEIGHT - PAD - fraction * (HEIGHT - PAD - 28)

    top = max(y_max, 1.0)
    ticks = [(ys(v), f"{v:g}") for v in (0.1, 1, 10, 100, 1000, 10000) if y_min <= v <= top]
    parts = _axes(title, "seconds into the phase", y_label, _x_ticks(x_max), ticks)
    for name, values in series:
        colour = COLOURS.get(name, "#555")
        for x, y in values:
            cx = PAD + x / x_max * (WIDTH - PAD - 12)
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{ys(y):.1f}" r="2.2" fill="{colour}" fill-opacity="0.7"/>'
            )
    return _svg(parts + _legend([name for name, _ in series]))


def lines(title: str, series: list[Series], y_label: str) -> str:
    """Cumulative counters over time."""
    points = [p for _, values in series for p in values]
    x_max = nice_ticks(max((x for x, _ in points), default=1.0), 6)[-1]
    values_y = nice_ticks(max(max((y for _, y in points), default=1.0), 1.0))
    y_max = values_y[-1]

    def ys(value: float) -> float:
        return HEIGHT - PAD - value / y_max * (HEIGHT - PAD - 28)

    ticks = [(ys(v), _label(v)) for v in values_y]
    parts = _axes(title, "seconds into the cioguard phase", y_label, _x_ticks(x_max), ticks)
    for name, values in series:
        path = " ".join(f"{PAD + x / x_max * (WIDTH - PAD - 12):.1f},{ys(y):.1f}" for x, y in values)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{COLOURS.get(name, "#555")}" stroke-width="2"/>'
        )
    return _svg(parts + _legend([name for name, _ in series]))


def bars(title: str, values: list[tuple[str, float]]) -> str:
    """One bar per label (pitfalls by code)."""
    y_max = max((v for _, v in values), default=1.0) or 1.0
    parts = _axes(title, "pitfall code", "occurrences", [], [(HEIGHT - PAD, "0")])
    slot = (WIDTH - PAD - 12) / max(len(values), 1)
    for i, (label, value) in enumerate(values):
        height = value / y_max * (HEIGHT - PAD - 40)
        x = PAD + i * slot + slot * 0.2
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{slot * 0.6:.1f}" '
            f'height="{height:.1f}" fill="#9467bd"/>'
        )
        parts.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{label}</text>'
        )
        parts.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{HEIGHT - PAD - height - 4:.1f}" '
            f'text-anchor="middle">{value:g}</text>'
        )
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no pitfalls</text>')
    return _svg(parts)


def _svg(parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" class="chart">' + "".join(parts) + "</svg>"
    )


def render_report(outcome: DemoOutcome) -> str:
    latency = scatter_log(
        "Web request latency: blocking SDK vs cioguard",
        [(phase.name, [(s.started, s.seconds * 1000) for s in phase.samples]) for phase in outcome.phases],
        "ms (log scale)",
    )
    timeline = outcome.phases[-1].timeline
    accepted = lines(
        "Operations accepted vs delivered",
        [(key, [(row["t"], row.get(key, 0.0)) for row in timeline]) for key in ("accepted", "delivered")],
        "operations",
    )
    faults = lines(
        "429 responses and retries",
        [(key, [(row["t"], row.get(key, 0.0)) for row in timeline]) for key in ("rate_limited", "retries")],
        "count",
    )
    pitfalls = bars("Pitfalls caught, by code", [(seen.code, float(seen.count)) for seen in outcome.pitfalls])
    summary = html.escape(render_summary(outcome))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cioguard demo report</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
.grid2 {{ display: grid; grid-template-columns: repeat(2, {WIDTH}px); gap: 16px; }}
svg.chart {{ background: #fafafa; border: 1px solid #ddd; font-size: 11px; }}
svg .title {{ font-size: 14px; font-weight: bold; }}
svg .axis {{ stroke: #444; }} svg .grid {{ stroke: #e4e4e4; }}
pre {{ background: #f4f4f4; padding: 12px; font-size: 12px; }}
</style></head><body>
<h1>cioguard demo</h1>
<div class="grid2">{latency}{accepted}{faults}{pitfalls}</div>
<pre>{summary}</pre>
</body></html>
"""
