"""``cioguard demo``: the value of cioguard in one minute, on the embedded Customer.io emulator.

::

    cioguard demo                       # or: make demo
    cioguard demo --report demo.html    # also write a page of charts
    cioguard demo --serve               # keep the shop, /metrics and the emulator up for Prometheus

It starts the emulator (with latency, a few 500s and a burst of 429s with ``Retry-After``), a small
Starlette shop under uvicorn whose handlers call the ``customerio`` SDK, and replays the same
seeded traffic twice over real HTTP: once against the plain blocking SDK, once after
``cioguard.instrument()``. It prints web latency side by side, what was delivered, and the pitfalls
caught. The exit status is 0 only when nothing accepted was lost.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard demo",
        # --help is plain text: the docstring's first paragraph without its RST markup
        description=(__doc__.split("\n\n")[0] if __doc__ else "").replace("``", ""),
    )
    parser.add_argument("--requests", type=int, default=240, help="web requests per phase (default 240)")
    parser.add_argument("--duration", type=float, default=30.0, help="at most this many seconds per phase")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated traffic (repeatable runs)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent web clients (default 4)")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency in seconds (0.05)")
    parser.add_argument("--report", metavar="PATH", help="write a self-contained HTML report with charts")
    parser.add_argument(
        "--serve", action="store_true", help="keep the app and emulator running after the run"
    )
    parser.add_argument("--port", type=int, default=0, help="port for the shop app (default: any free one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.requests < 10 or args.concurrency < 1 or args.duration <= 0 or args.latency < 0:
        print("cioguard demo: --requests must be >= 10, --concurrency >= 1, --duration > 0, --latency >= 0")
        return 2
    from cioguard.demo.runner import DemoSettings, run_demo
    from cioguard.demo.summary import render_summary

    settings = DemoSettings(
        requests=args.requests,
        concurrency=args.concurrency,
        latency=args.latency,
        duration=args.duration,
        seed=args.seed,
        serve=args.serve,
        report=args.report,
        port=args.port,
    )
    outcome = run_demo(settings)
    print(render_summary(outcome), flush=True)
    if args.report:
        from cioguard.demo.report import render_report

        Path(args.report).write_text(render_report(outcome), encoding="utf-8")
        print(f"\n  report: {Path(args.report).resolve()}")
    return 0 if outcome.lost == 0 else 1
