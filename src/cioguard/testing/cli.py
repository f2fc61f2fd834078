"""``cioguard emulator``: run the Customer.io emulator standalone.

::

    cioguard emulator --port 8080 --https --site-id s --api-key k --app-key a --latency 0.05
    cioguard emulator --port 8080 --record state.json     # write what arrived on exit

It prints the URLs and credentials to use (e.g. ``CustomerIO(site_id, api_key, host="127.0.0.1",
port=8080)`` with ``REQUESTS_CA_BUNDLE`` set to the printed CA path), then one line per request
(method, path, status, operations applied, time; never credentials or bodies; ``--quiet`` turns
them off) and serves until Ctrl-C or SIGTERM, then stops cleanly and exits 0. While it runs,
``GET /__emulator/state`` answers what arrived (people, events, deliveries, counts) as JSON.
Only 127.0.0.1 is served.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from cioguard.testing.emulator import STATE_PATH, FakeCustomerIO, RequestSummary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard emulator", description="Run the local Customer.io emulator."
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    parser.add_argument(
        "--https", action="store_true", help="serve HTTPS with a throw-away CA (needs trustme)"
    )
    parser.add_argument("--site-id", default="site-id", help="Track API site id (default: site-id)")
    parser.add_argument("--api-key", default="track-key", help="Track API key (default: track-key)")
    parser.add_argument("--app-key", default="app-key", help="App API key (default: app-key)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--sink", action="store_true", help="count requests only, keep no state")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per request")
    parser.add_argument(
        "--record",
        metavar="FILE",
        help=f"on exit, write what arrived (the JSON of GET {STATE_PATH}) to FILE",
    )
    return parser


def _print_request(summary: RequestSummary) -> None:
    print(summary.line(), flush=True)


def _write_state(fake: FakeCustomerIO, path: str) -> str | None:
    """Write ``fake.state()`` as JSON to ``path``; an error text, or None when written."""
    import orjson

    try:
        data = orjson.dumps(fake.state(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as out:
            out.write(data + b"\n")
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.latency < 0 or not 0 <= args.port <= 65535:
        print("cioguard emulator: --latency must be >= 0 and --port in 0..65535", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    fake = FakeCustomerIO(
        https=args.https,
        site_id=args.site_id,
        api_key=args.api_key,
        app_key=args.app_key,
        latency=args.latency,
        store=not args.sink,
        port=args.port,
        on_request=None if args.quiet else _print_request,
    )
    try:
        try:
            fake.start()
        except OSError as exc:
            print(f"cioguard emulator: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
            return 1
        with fake:
            lines = [
                f"Customer.io emulator listening on {fake.url}",
                f"  Track API: {fake.track_url}  (Basic site_id={args.site_id!r} api_key={args.api_key!r})",
                f"  App API:   {fake.api_url}  (Bearer {args.app_key!r})",
                f"  SDK: CustomerIO({args.site_id!r}, {args.api_key!r}, host='127.0.0.1', port={fake.port})",
            ]
            if fake.ca_bundle:
                lines.append(f"  CA bundle: {fake.ca_bundle}  (export REQUESTS_CA_BUNDLE={fake.ca_bundle})")
            else:
                lines.append(
                    "  plain HTTP: the SDK's CustomerIO needs --https (it always builds https:// URLs)"
                )
            lines.append(f"  State:     GET {fake.url}{STATE_PATH}  (what arrived, as JSON)")
            lines.append("Press Ctrl-C to stop.")
            print("\n".join(lines), flush=True)
            while not stop.wait(0.2):
                pass
            stats = fake.stats()
            error = None if args.record is None else _write_state(fake, args.record)
        print(f"stopped after {stats['requests']} requests", flush=True)
        if error is not None:
            print(f"cioguard emulator: {error}", file=sys.stderr)
            return 1
        if args.record is not None:
            print(f"state written to {args.record}", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
