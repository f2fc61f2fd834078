"""Is the Redis behind ``queue_url`` durable? Warn once when a Redis crash would lose operations.

::

    from cioguard.scaleout.persistence import describe_risk, warn_if_not_durable

    warn_if_not_durable(client, "redis://127.0.0.1:6379/0")   # logs one warning per URL and process

Operations wait in Redis Streams until a worker delivers them. Without the append-only file
(``appendonly no``) a Redis crash (``kill -9``, OOM killer, host loss) loses every write since the
last RDB snapshot — thousands of operations at a normal rate. :func:`describe_risk` reads
``INFO persistence`` (available on managed Redis too, where ``CONFIG`` is often disabled) and
returns what a crash would lose, or ``None`` when AOF is on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger("cioguard.scaleout")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def describe_risk(info: Mapping[str, Any], now: float) -> str | None:
    """What a Redis crash would lose given ``INFO persistence``; ``None`` if AOF is on."""
    if str(info.get("aof_enabled", "0")) == "1":
        return None
    try:
        last_save = float(info.get("rdb_last_save_time", 0))
        changes = int(info.get("rdb_changes_since_last_save", 0))
    except (TypeError, ValueError):
        last_save, changes = 0.0, 0
    if last_save <= 0:
        return "appendonly is off and no RDB snapshot was ever taken: a crash loses everything queued"
    age = max(0.0, now - last_save)
    return (
        f"appendonly is off; the last RDB snapshot is {age:.0f} s old with {changes} write(s) since: "
        "a crash loses every operation queued after the last snapshot"
    )


def warn_if_not_durable(client: Any, safe_url: str, now: Callable[[], float] = time.time) -> str | None:
    """Log once per ``safe_url`` (no password in it) when Redis persistence is off; the text or None.

    Never raises: an unreachable Redis or a refused ``INFO`` is the connection code's business."""
    try:
        info = client.info("persistence")
    except Exception:
        return None
    risk = describe_risk(info, now())
    if risk is None:
        return None
    with _warned_lock:
        if safe_url in _warned:
            return risk
        _warned.add(safe_url)
    logger.warning(
        "cioguard: Redis at %s is not durable (%s). Turn on the append-only file "
        "(appendonly yes, appendfsync everysec) so a Redis crash cannot lose queued operations.",
        safe_url,
        risk,
    )
    return risk


def safe_redis_url(url: str) -> str:
    """``redis://user:secret@host:6379/0`` → ``redis://host:6379/0`` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    _, at, host = rest.rpartition("@")
    return f"{scheme}://{host}" if at else url
