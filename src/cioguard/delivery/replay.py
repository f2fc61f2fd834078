"""``cioguard replay SPOOL [--inspect] [--track-url URL] [--api-url URL] [--timeout S]``.

Deliver (or look at) what a durable spool holds, by hand::

    cioguard replay /var/lib/app/cio.spool --inspect      # what is in it; sends nothing
    cioguard replay /var/lib/app/cio.spool                # deliver the rows of dead processes
    cioguard replay cio.spool --track-url http://127.0.0.1:8080 --timeout 60

Rows of live processes are left alone (they deliver them themselves). Claimed rows are deleted
only once Customer.io accepted them (or rejected them for good, or they are older than
``spool_max_age``); **every row that could not be delivered stays in the file** for the next run.
``--track-url``/``--api-url`` send the rows to another base URL (credentials come from the rows).
Exit status: 0 everything delivered; 1 rows remain or some were rejected/expired ("N rows
remain"); 2 usage error, missing, corrupt or non-spool file (one line on stderr). The file holds
credentials: it is opened in place, never copied.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Sequence

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.engine import DeliveryEngine
from cioguard.delivery.spool import endpoint_resolver
from cioguard.delivery.spool_owners import describe
from cioguard.delivery.spool_store import open_existing

COLUMNS_HELP = """\
columns: OWNER   the process handle holding the rows (pid:token of the process that wrote them)
         STATE   live = that process is running and delivers its rows itself (replay leaves them);
                 dead = crashed or stopped: replay claims and delivers them
         API     track (Track API) or app (App API); LABEL the endpoint label (never a key)
         METHOD  the SDK method that queued the operation
         OPS     rows; BYTES their request bodies; OLDEST age of the oldest row"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard replay", description="Inspect or deliver a durable spool."
    )
    parser.add_argument("spool", help="path of the SQLite spool file (spool_path)")
    parser.add_argument("--inspect", action="store_true", help="print what the spool holds, send nothing")
    parser.add_argument("--track-url", help="send Track API rows to this base URL instead of the stored one")
    parser.add_argument("--api-url", help="send App API rows to this base URL instead of the stored one")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to try delivering (default 30)")
    return parser


def inspect(path: str) -> str:
    """The table printed by ``--inspect`` (header, one line per owner/endpoint/method, help)."""
    conn = open_existing(path, read_only=True)
    try:
        states = describe(conn, path)
        now = time.time()
        query = (
            "SELECT owner, api, label, method, COUNT(*), SUM(LENGTH(body)), MIN(created_at) FROM ops "
            "GROUP BY owner, api, label, method ORDER BY owner, api, label, method"
        )
        header = ("OWNER", "STATE", "API", "LABEL", "METHOD", "OPS", "BYTES")
        lines = ["{:<22} {:<5} {:<5} {:<12} {:<18} {:>8} {:>10} OLDEST".format(*header)]
        total = 0
        for owner, api, label, method, count, size, oldest in conn.execute(query).fetchall():
            state = states.get(owner, "dead")
            age = max(0.0, now - float(oldest))
            lines.append(
                f"{owner:<22} {state:<5} {api:<5} {label:<12} {method:<18} {count:>8} {size:>10} {age:.0f}s"
            )
            total += int(count)
        lines.append(f"total: {total} operation(s) in {path}")
        lines.append(COLUMNS_HELP)
        return "\n".join(lines)
    finally:
        conn.close()


def remaining(path: str) -> tuple[int, int]:
    """Rows left that no live process owns (what the next replay would take), and rows of live
    processes (left alone: they deliver them themselves)."""
    conn = open_existing(path, read_only=True)
    try:
        live = [owner for owner, state in describe(conn, path).items() if state == "live"]
        total = int(conn.execute("SELECT COUNT(*) FROM ops").fetchone()[0])
        if not live:
            return total, 0
        marks = ",".join("?" * len(live))
        owned = int(conn.execute(f"SELECT COUNT(*) FROM ops WHERE owner IN ({marks})", live).fetchone()[0])
        return total - owned, owned
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.inspect:
            print(inspect(args.spool))
            return 0
        open_existing(args.spool, read_only=True).close()  # a clear error before anything is sent
    except FileNotFoundError:
        print(f"cioguard replay: no such spool file: {args.spool}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError) as exc:
        print(f"cioguard replay: {args.spool} is not a readable cioguard spool ({exc})", file=sys.stderr)
        return 2
    engine = DeliveryEngine(
        DeliveryConfig(spool_path=args.spool, spool_sync="always", flush_interval=0.0),
        resolve_endpoint=endpoint_resolver(args.track_url, args.api_url),
    )
    end = time.monotonic() + max(0.0, args.timeout)
    ok = engine.flush(max(0.0, args.timeout))
    # ``--timeout`` bounds the whole run: after a flush that used it up, stop at once (the rows
    # still undelivered stay in the file; shutdown never deletes them).
    engine.shutdown(min(5.0, max(0.0, end - time.monotonic())))
    stats = engine.stats()
    dropped = {reason: n for reason, n in stats["dropped"].items() if n}
    try:
        left, live = remaining(args.spool)
    except (sqlite3.Error, OSError) as exc:
        print(f"cioguard replay: could not count what remains ({exc})", file=sys.stderr)
        return 1
    lost = ", ".join(f"{n} {reason}" for reason, n in dropped.items()) or "none"
    hint = " (run replay again once the endpoint is reachable)" if left else ""
    others = f"; {live} rows belong to running processes, which deliver them" if live else ""
    print(f"delivered {stats['delivered']} operation(s), dropped: {lost}; {left} rows remain{hint}{others}")
    return 0 if ok and not dropped and left == 0 else 1
