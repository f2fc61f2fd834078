"""Where the webhook receiver remembers the ``event_id`` values it already acted on.

Customer.io delivers each reporting webhook at least once and retries for up to 7 days, so a receiver
must act on each ``event_id`` once. Choose the store with ``WebhookReceiver(dedupe=...)``:

* ``None`` / ``"memory"`` (default): the last ``dedup_size`` ids, **per process**. Behind several
  workers (gunicorn ``--workers 4``, several pods) a redelivery that lands on another worker acts again.
* ``"sqlite:////var/lib/app/webhooks.sqlite"`` (absolute path) or ``"sqlite:///webhooks.sqlite"``
  (relative to the working directory), as SQLAlchemy spells them: a SQLite file shared by every
  process on one machine (WAL mode; ids older than ``ttl`` are pruned).
* ``"redis://host:6379/0"``: a Redis shared by every machine (``SET NX EX``: one atomic step).
* ``"redis"``: the Redis of cioguard's ``queue_url`` option (``instrument(queue_url=...)`` or
  ``CIOGUARD_QUEUE_URL``).
* any object with ``add(event_id) -> bool`` (:class:`DedupeStore`).

Shared stores keep an id for ``ttl`` seconds (default 8 days: longer than Customer.io retries). When a
shared store cannot be reached, the event is acted on (a rare double action beats a lost bounce) and
the failure is logged once until the store works again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("cioguard.webhooks")

#: How long shared stores remember an id: Customer.io retries for 7 days.
DEFAULT_TTL = 8 * 24 * 3600.0


@runtime_checkable
class DedupeStore(Protocol):
    """Remembers event ids. ``add`` is atomic across everything sharing the store."""

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; ``False`` when it was already there (a redelivery)."""
        ...


class MemoryDedupe:
    """A bounded, thread-safe set of recently seen ids in this process (oldest evicted first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, event_id: str) -> bool:
        # Check-and-insert under one lock: two concurrent deliveries of one event act once.
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = None
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._ids)


class _FailOpen:
    """Logs a store failure once per outage; the caller then acts on the event."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._failing = False

    def failed(self) -> bool:
        if not self._failing:
            self._failing = True
            logger.warning(
                "cioguard.webhooks: %s dedupe store failed; acting without it", self._name, exc_info=True
            )
        return True

    def worked(self) -> None:
        if self._failing:
            self._failing = False
            logger.warning("cioguard.webhooks: %s dedupe store works again", self._name)


_CREATE = "CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, at REAL NOT NULL)"


class SQLiteDedupe:
    """Ids in a SQLite file shared by the processes of one machine (one connection per thread)."""

    def __init__(
        self, path: str, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if path != ":memory:" and not os.path.isdir(directory):
            # a typo in the URL would otherwise show only at the first webhook, as a logged failure
            # with every redelivery acted on again
            raise ValueError(
                f"WebhookReceiver: the dedupe SQLite file's directory {directory} does not exist "
                "(sqlite:///relative/path or sqlite:////absolute/path)"
            )
        self.path = path
        self.ttl = ttl
        self._clock = clock
        self._local = threading.local()
        self._inserts = 0
        self._health = _FailOpen("sqlite")
        self._prepared_pid = 0
        self._prepare_lock = threading.Lock()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the table, once per process. Switching the journal mode takes an exclusive
        lock that SQLite's busy handler does not wait for, so concurrent first connections must not
        all try it (they failed with "database is locked" and acted on the event twice)."""
        if self.path == ":memory:":  # every connection is a database of its own
            conn.execute(_CREATE)
            return
        with self._prepare_lock:
            if self._prepared_pid == os.getpid():
                return
            deadline = time.monotonic() + 5.0
            while True:
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(_CREATE)
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)  # another process is switching the mode right now
            self._prepared_pid = os.getpid()

    def _connection(self) -> sqlite3.Connection:
        # Per thread and per process: a connection must never cross a fork or a thread.
        key = (os.getpid(), threading.get_ident())
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "key", None) != key:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self._prepare(conn)
            self._local.conn, self._local.key = conn, key
        return conn

    def add(self, event_id: str) -> bool:
        now = self._clock()
        try:
            conn = self._connection()
            # One statement: the primary key makes concurrent inserts of one id race-free.
            cursor = conn.execute("INSERT OR IGNORE INTO seen (event_id, at) VALUES (?, ?)", (event_id, now))
            added = cursor.rowcount == 1
            self._inserts += 1
            if self._inserts % 1000 == 1:
                conn.execute("DELETE FROM seen WHERE at < ?", (now - self.ttl,))
        except sqlite3.Error:
            return self._health.failed()
        self._health.worked()
        return added


class RedisDedupe:
    """Ids in Redis keys ``<prefix><event_id>`` that expire after ``ttl``."""

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        ttl: float = DEFAULT_TTL,
        prefix: str = "cioguard:webhook:seen:",
    ) -> None:
        if isinstance(url_or_client, str):
            import redis

            url_or_client = redis.Redis.from_url(
                url_or_client, socket_connect_timeout=2.0, socket_timeout=2.0
            )
        self._redis = url_or_client
        self.ttl = ttl
        self.prefix = prefix
        self._health = _FailOpen("redis")

    def add(self, event_id: str) -> bool:
        try:
            added: Any = self._redis.set(self.prefix + event_id, b"1", nx=True, ex=max(1, int(self.ttl)))
        except Exception:  # redis.RedisError, OSError: fail open (see the module docstring)
            return self._health.failed()
        self._health.worked()
        return bool(added)


def _queue_url() -> str:
    from cioguard.config import load_options
    from cioguard.instrumentation.instrumentor import active_runtime

    runtime = active_runtime()
    url = getattr(getattr(runtime, "options", None), "queue_url", None) or load_options({}).queue_url
    if not url:
        raise ValueError(
            'WebhookReceiver: dedupe="redis" needs cioguard\'s queue_url '
            "(instrument(queue_url=...) or CIOGUARD_QUEUE_URL); or pass a redis:// URL"
        )
    return str(url)


def make_store(spec: str | DedupeStore | None, *, capacity: int, ttl: float = DEFAULT_TTL) -> DedupeStore:
    """The store ``spec`` names (see the module docstring); ``ValueError`` for anything else."""
    if spec is None or spec == "memory":
        return MemoryDedupe(capacity)
    if isinstance(spec, str):
        if spec == "redis":
            return RedisDedupe(_queue_url(), ttl=ttl)
        if spec.startswith(("redis://", "rediss://", "unix://")):
            return RedisDedupe(spec, ttl=ttl)
        if spec.startswith("sqlite:///") and len(spec) > len("sqlite:///"):
            return SQLiteDedupe(spec[len("sqlite:///") :], ttl=ttl)
        raise ValueError(
            "WebhookReceiver: dedupe must be 'memory', 'redis', a redis:// URL, a sqlite:///path URL "
            f"or an object with add(event_id) -> bool; got {spec!r}"
        )
    if isinstance(spec, DedupeStore):
        return spec
    raise ValueError(f"WebhookReceiver: dedupe store {spec!r} has no add(event_id) method")
