"""The README's performance table, rendered from a run's JSON (so it is never typed by hand).

::

    python -m benchmarks                          # writes benchmarks/results/latest.json
    python -m benchmarks.readme                   # prints the Markdown for README.md's table
    python -m benchmarks.readme path/to/run.json

The header line names the date, machine, interpreter and load average of the run; the table has the
per-call median, p99 and p99.9, the window cost per call (calls plus the client's own flushes), and
the ratios to the floor and to Segment on the same payload; the targets follow with their status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parent / "results" / "latest.json"

#: (row name, label in the README) of the caller rows, in the order shown.
CALLER_ROWS = (
    ("wrapt wrapper + deque.append", "floor: a `wrapt` wrapper + `deque.append`"),
    ("cioguard track(), realistic", "**cioguard `track()`, all pitfall rules on**"),
    ("cioguard track(), small", "cioguard `track()`, all pitfall rules on"),
    ("cioguard track(), realistic, rules off", 'cioguard `track()`, `pitfalls="off"`'),
    ("cioguard track(), small, rules off", 'cioguard `track()`, `pitfalls="off"`'),
    ("cioguard track(), realistic, OTel SDK spans", "cioguard + OpenTelemetry SDK recording spans"),
    ("cioguard track(), small, spool sync=group", 'cioguard + spool, `spool_sync="group"`'),
    ("cioguard track(), small, spool sync=always", 'cioguard + spool, `spool_sync="always"`'),
    ("segment track(), realistic", "Segment `track()`"),
    ("segment track(), small", "Segment `track()`"),
    ("posthog capture(), realistic", "PostHog `capture()`"),
    ("posthog capture(), small", "PostHog `capture()`"),
    ("customerio SDK track, 0 ms", "blocking SDK `track()`, server at 0 ms"),
    ("customerio SDK track, 50 ms", "blocking SDK `track()`, server at 50 ms"),
)


def _us(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    if number >= 1000:
        return f"{number:,.0f} µs".replace(",", " ")
    if number >= 10:
        return f"{number:.0f} µs"
    return f"{number:.1f} µs"


def _ratio(value: Any) -> str:
    if value is None:
        return ""
    number = float(value)
    return f"{number:,.0f}x" if number >= 10 else f"{number:.1f}x" if number >= 1 else f"{number:.2f}x"


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f}".replace(",", " ")


def render(document: dict[str, Any]) -> str:
    meta = document["meta"]
    rows = {row["name"]: row for row in document["rows"] if row["status"] == "ok"}
    load = meta.get("loadavg_at_start", ["?"])[0]
    lines = [
        f"A run on {meta['nproc']} vCPUs ({meta['cpu_model']}), Python {meta['python']}, "
        f"{meta['started_utc'][:16].replace('T', ' ')} UTC, load average {load} at the start "
        f"(`python -m benchmarks`, {meta['duration_s']} s):",
        "",
        "| caller cost per call | payload | median | p99 | p99.9 | window ¹ | x floor | vs Segment |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in CALLER_ROWS:
        row = rows.get(name)
        if row is None:
            continue
        ratios = row.get("ratios", {})
        lines.append(
            f"| {label} | {row['payload'] or '-'} | {_us(row['median'])} | {_us(row['p99'])} | "
            f"{_us(row['p999'])} | {_us(row['extra'].get('window_us'))} | {_ratio(ratios.get('x floor'))} | "
            f"{_ratio(ratios.get('vs segment'))} |"
        )
    lines += ["", "| delivery, memory, web | value |", "|---|---|"]
    for name, label, unit in (
        ("cioguard delivered events/s, 0 ms", "events/s end to end (caller + sender, one process), 0 ms", ""),
        ("cioguard delivered events/s, 50 ms", "events/s end to end, 50 ms server", ""),
        ("cioguard queue drain events/s, 0 ms", "events/s, sender alone (queue drain), 0 ms", ""),
        ("cioguard requests per 1000 events, 0 ms", "HTTP requests per 1 000 events", ""),
        ("cioguard memory per queued event, 100 B, depth 100,000", "memory per queued small event", " B"),
        ("segment memory per queued event, 100 B, depth 1,000", "… Segment", " B"),
        ("posthog memory per queued event, 100 B, depth 1,000", "… PostHog", " B"),
    ):
        row = rows.get(name)
        if row is not None:
            shown = f"{row['median']:.2f}" if row["median"] < 10 else _number(row["median"])
            lines.append(f"| {label} | {shown}{unit} |")
    trivial = rows.get("starlette trivial endpoint, CioGuardMiddleware")
    if trivial is not None:
        lines.append(
            f"| `CioGuardMiddleware` on a trivial Starlette endpoint (ASGI app called directly) | "
            f"+{trivial['extra'].get('overhead_pct', 0):.0f} % |"
        )
    lines += ["", "Targets (issue 17), from this run:", ""]
    for target in document["targets"]:
        value = target["value"]
        shown = "-" if value is None else f"{value:,.3g}" if abs(value) < 1000 else _number(value)
        lines.append(f"- {target['status']}: {target['target']} (measured {shown})")
    lines += [
        "",
        "¹ window: wall time of the calls *plus the library's own `flush()`* per call — what the "
        "process pays in total for an event, sender work included.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
