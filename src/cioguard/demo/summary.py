"""The demo's closing summary, as plain text for the terminal."""

from __future__ import annotations

import contextlib
import os
import textwrap

from cioguard.demo.runner import DemoOutcome
from cioguard.demo.workload import percentile


def _ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:,.1f}x" if fast > 0 else "-"


def _relative(location: str) -> str:
    path, _, line = location.rpartition(":")
    # The demo's SDK calls are all in demo/app.py; a finding made on the sender is attributed to the
    # line that called instrument() -- in the demo that is cioguard's own entry point (bin/cioguard).
    if not path.replace(os.sep, "/").endswith("/demo/app.py"):
        return "(background sender: about the API's answers, not one line)"
    with contextlib.suppress(ValueError):  # another drive on Windows
        path = os.path.relpath(path)
    return f"{path}:{line}"


def render_summary(outcome: DemoOutcome) -> str:
    settings = outcome.settings
    blocking, guarded = outcome.phases[0], outcome.phases[-1]
    slow, fast = blocking.latencies_ms(), guarded.latencies_ms()
    lines = [
        "",
        f"cioguard demo: {len(slow)} web requests per phase, {settings.concurrency} clients, "
        f"Customer.io emulator latency {settings.latency * 1000:.0f} ms, seed {settings.seed}",
        "",
        f"  {'web request latency':<22}{'blocking SDK':>14}{'cioguard':>12}{'ratio':>10}",
    ]
    for label, fraction in (("p50", 0.50), ("p99", 0.99)):
        a, b = percentile(slow, fraction), percentile(fast, fraction)
        lines.append(f"  {label:<22}{a:>11.1f} ms{b:>9.1f} ms{_ratio(a, b):>10}")
    lines.append(f"  {'failed requests':<22}{blocking.failed():>14}{guarded.failed():>12}")
    lines.append(f"  {'phase wall time':<22}{blocking.wall_seconds:>12.1f} s{guarded.wall_seconds:>10.1f} s")
    stats = outcome.stats
    dropped = dict(stats.get("dropped", {}))
    dropped_text = ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items()) if n) or "none"
    lines += [
        "",
        "  delivery (cioguard phase)",
        f"    operations accepted {stats.get('accepted', 0):,} · delivered {stats.get('delivered', 0):,} · "
        f"dropped {dropped_text} · lost {outcome.lost}",
        f"    HTTP requests sent {stats.get('requests', 0):,} · 429s {stats.get('rate_limited', 0)} · "
        f"retries {stats.get('retries', 0)}",
        "",
        "  Customer.io pitfalls caught while the code ran",
    ]
    if not outcome.pitfalls:
        lines.append("    none")
    for seen in outcome.pitfalls:
        lines.append(f"    {seen.code} x{seen.count:<3} {_relative(seen.location)}")
        text = seen.message.splitlines()[0].removeprefix(seen.code).strip()
        lines += textwrap.wrap(text, width=96, initial_indent=" " * 11, subsequent_indent=" " * 11)
    if outcome.log:
        lines += ["", "  cioguard's log during the cioguard phase"]
        for entry in outcome.log[:10]:
            lines += textwrap.wrap(entry, width=96, initial_indent="    ", subsequent_indent=" " * 8)
    metrics = (
        f"  metrics: {outcome.app_url}/metrics (kept up by --serve)"
        if settings.serve
        else "  metrics: run with --serve to keep the app (with /metrics) and the emulator up"
    )
    lines += [
        "",
        metrics,
        "  Grafana: `cioguard dashboards export DIR` writes the dashboard and alert rules",
        "",
        "  result: nothing accepted was lost"
        if outcome.lost == 0
        else f"  result: {outcome.lost} operations LOST",
    ]
    return "\n".join(lines)
