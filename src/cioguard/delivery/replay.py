"""``cioguard replay SPOOL [--inspect] [--track-url URL] [--timeout S]``: a spool by hand.

``--inspect`` prints what the spool holds (rows per owner, endpoint label and method, oldest
age) without sending anything. Without it, the rows of dead owners are claimed and delivered
(live processes keep theirs); ``--track-url`` first points those rows' Track API endpoint at
another base URL (e.g. the local emulator). Exit status: 0 all delivered, 1 something is left
or was dropped, 2 usage error. The spool file holds credentials: it is opened, never copied.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.engine import DeliveryEngine
from cioguard.delivery.spool import LEASE_SECONDS, open_db, pid_alive


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cioguard replay", description="Inspect or deliver a durable spool."
    )
    parser.add_argument("spool", help="path of the SQLite spool file")
    parser.add_argument("--inspect", action="store_true", help="print the contents, send nothing")
    parser.add_argument("--track-url", help="send Track API rows to this base URL instead")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for delivery")
    return parser


def inspect(path: str) -> str:
    conn = open_db(path)
    try:
        owners = {o: (pid, beat) for o, pid, beat in conn.execute("SELECT owner, pid, heartbeat FROM owners")}
        lines = []
        total = 0
        now = time.time()
        query = (
            "SELECT owner, label, method, COUNT(*), MIN(created_at), SUM(LENGTH(body)) FROM ops "
            "GROUP BY owner, label, method ORDER BY owner, label, method"
        )
        for owner, label, method, count, oldest, size in conn.execute(query):
            pid, beat = owners.get(owner, (0, 0.0))
            alive = bool(pid) and beat > now - LEASE_SECONDS and pid_alive(pid)
            state = "live" if alive else "dead"
            lines.append(
                f"{owner:<22} {state:<5} {label:<14} {method:<18} {count:>8} ops {size:>10} B "
                f"oldest {max(0.0, now - oldest):.0f}s"
            )
            total += count
        lines.append(f"total: {total} operation(s)")
        return "\n".join(lines)
    finally:
        conn.close()


def retarget(path: str, track_url: str) -> int:
    """Point the Track rows of dead owners at ``track_url``; returns the rows changed."""
    conn = open_db(path)
    try:
        now = time.time()
        dead = [
            o
            for o, pid, beat in conn.execute("SELECT owner, pid, heartbeat FROM owners")
            if beat < now - LEASE_SECONDS or not pid_alive(pid)
        ]
        live = {o for (o,) in conn.execute("SELECT owner FROM owners")} - set(dead)
        changed = 0
        conn.execute("BEGIN IMMEDIATE")
        for (owner,) in conn.execute("SELECT DISTINCT owner FROM ops").fetchall():
            if owner not in live:
                cur = conn.execute(
                    "UPDATE ops SET base_url = ? WHERE owner = ? AND api = 'track'",
                    (track_url.rstrip("/"), owner),
                )
                changed += cur.rowcount
        conn.execute("COMMIT")
        return changed
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if not os.path.exists(args.spool):
        print(f"cioguard replay: no such spool: {args.spool}", file=sys.stderr)
        return 2
    if args.inspect:
        print(inspect(args.spool))
        return 0
    if args.track_url:
        retarget(args.spool, args.track_url)
    engine = DeliveryEngine(DeliveryConfig(spool_path=args.spool, spool_sync="always", flush_interval=0.0))
    ok = engine.flush(args.timeout)
    engine.shutdown(min(5.0, args.timeout))
    stats = engine.stats()
    dropped = sum(stats["dropped"].values())
    print(
        f"delivered {stats['delivered']} operation(s), dropped {dropped} {stats['dropped']}, "
        f"left {stats['spilled'] + (0 if ok else stats['queue_size'])}"
    )
    return 0 if ok and dropped == 0 and not stats["spilled"] else 1
