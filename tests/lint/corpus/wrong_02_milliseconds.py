"""Pitfall 2: millisecond timestamps (JavaScript's Date.now() habit)."""

import time
from datetime import datetime, timezone

import customerio as cio_module

cio = cio_module.CustomerIO("site", "key")


def signed_up(user_id: str, email: str) -> None:
    cio.identify(user_id, email=email, created_at=int(time.time() * 1000))  # expect: CIO002


def purchased(user_id: str) -> None:
    now_ms = time.time_ns() // 1_000_000
    cio.track(user_id, "order_completed", {"total": 10}, None, now_ms)  # expect: CIO002


def renewed(user_id: str) -> None:
    stamp = datetime.now(timezone.utc).timestamp() * 1000
    cio.track(user_id, "plan_renewed", data={"renewed_at": stamp})  # expect: CIO002


def attributes(user_id: str, email: str) -> None:
    attrs: dict[str, object] = {"email": email}
    attrs["last_seen_at"] = round(time.time() * 1e3)  # expect: CIO002
    cio.identify(user_id, **attrs)


def backfilled(user_id: str) -> None:
    cio.backfill(user_id, "imported", 1704067200000)  # expect: CIO002


def exported(user_id: str) -> None:
    cio.track(user_id, "order_exported", data={"exported_at": time.time_ns() // 10**6})  # expect: CIO002
    cio.track(user_id, "order_exported", data={"placed_at": "2024-05-01T10:20:30Z"})  # expect: CIO002
    shipped = datetime.now(timezone.utc)
    cio.track(user_id, "order_shipped", data={"shipped_at": shipped.isoformat()})  # expect: CIO002
