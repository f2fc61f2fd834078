"""``python -m benchmarks``: run every row group in one process, print the table, write the JSON.

::

    python -m benchmarks                      # full run (a few minutes), the numbers for the README
    python -m benchmarks --quick              # tiny sizes: proves the harness works (CI smoke test)
    python -m benchmarks --only floor,peer    # some groups only
    python -m benchmarks --profile            # also write pyinstrument profiles of the cioguard hot path
    python -m benchmarks --target emulator    # Customer.io rows against cioguard.testing.FakeCustomerIO
    python -m benchmarks.readme               # the README's performance table from the last run

Groups: floor, sdk, peer, cioguard, delivery, depth, web. Results go to ``benchmarks/results/latest.json``
(``--out`` to change; the folder is gitignored).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
import time
from pathlib import Path

from benchmarks import (
    cioguard_rows,
    delivery_rows,
    depth,
    floors,
    goals,
    machine,
    peers,
    profiling,
    sdk_rows,
    web,
)
from benchmarks.harness import FULL, QUICK, Bench
from benchmarks.results import add_ratios, format_table, write_json
from benchmarks.sink import SinkProcess
from benchmarks.target import close_targets

GROUPS = {
    "floor": floors.run,
    "sdk": sdk_rows.run,
    "peer": peers.run,
    "cioguard": cioguard_rows.run,
    "delivery": delivery_rows.run,
    "depth": depth.run,
    "web": web.run,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="cioguard benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds, for CI)")
    parser.add_argument("--only", default="", help=f"comma-separated groups of: {', '.join(GROUPS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON result file")
    parser.add_argument("--profile", action="store_true", help="write pyinstrument hot-path profiles")
    parser.add_argument("--target", choices=("sink", "emulator"), default="sink", help="Customer.io server")
    parser.add_argument("--quiet", action="store_true", help="no per-row progress on stderr")
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="hard limit in seconds: dump every thread's stack and exit (default 90 quick, 900 full)",
    )
    args = parser.parse_args(argv)
    unknown = {g for g in args.only.split(",") if g} - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    # The last line of defence for "every loop is bounded": a hang shows where it hangs, then exits.
    faulthandler.dump_traceback_later(args.deadline or (90.0 if args.quick else 900.0), exit=True)
    meta = machine.describe()
    meta.update(mode="quick" if args.quick else "full", target=args.target)
    started = time.monotonic()
    with SinkProcess.start() as sink:
        # Every requests.Session in this process (SDK, peers, cioguard) trusts the sink's CA.
        os.environ["REQUESTS_CA_BUNDLE"] = sink.ca_bundle
        bench = Bench(
            sizes=sizes,
            sink=sink,
            target=args.target,
            only=frozenset(g for g in args.only.split(",") if g),
            verbose=not args.quiet,
        )
        try:
            for group, run in GROUPS.items():
                if bench.wants(group):
                    print(f"[{time.monotonic() - started:6.1f}s] {group}", file=sys.stderr, flush=True)
                    run(bench)
            if args.profile:
                meta["profiles"] = profiling.run(bench, args.out.parent)
        finally:
            close_targets()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    add_ratios(bench.rows)
    checked = goals.evaluate(bench.rows)
    print(format_table(bench.rows))
    print()
    print(goals.format_goals(checked))
    write_json(args.out, bench.rows, meta, checked)
    print(f"\nwrote {args.out} in {meta['duration_s']} s", file=sys.stderr)
    faulthandler.cancel_dump_traceback_later()
    failed = [row for row in bench.rows if row.status == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
