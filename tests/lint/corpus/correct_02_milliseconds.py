"""Pitfall 2, correct: Unix seconds (or a datetime, which the SDK converts)."""

import time
from datetime import datetime, timezone

import customerio as cio_module

cio = cio_module.CustomerIO("site", "key")


def signed_up(user_id: str, email: str) -> None:
    cio.identify(user_id, email=email, created_at=int(time.time()))


def purchased(user_id: str) -> None:
    now = time.time_ns() // 1_000_000_000
    cio.track(user_id, "order_completed", {"total": 10}, None, now)


def renewed(user_id: str) -> None:
    cio.track(user_id, "plan_renewed", data={"renewed_at": datetime.now(timezone.utc)})


def latency(user_id: str, started: float) -> None:
    elapsed_ms = (time.time() - started) * 1000
    cio.track(user_id, "report_generated", data={"elapsed_ms": elapsed_ms})


def backfilled(user_id: str) -> None:
    cio.backfill(user_id, "imported", 1704067200)


def exported(user_id: str, note: str) -> None:
    cio.track(user_id, "order_exported", data={"exported_at": time.time_ns() // 10**9, "note": note})
    cio.track(user_id, "order_exported", data={"placed_on": "2024-05-01", "status": "2024-05-01T10:20:30Z"})
