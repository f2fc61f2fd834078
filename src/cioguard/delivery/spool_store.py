"""Storage of the durable spool: the SQLite file, its schema, rows and how its faults are named.

::

    from cioguard.delivery.spool_store import open_db, fault_kind, move_aside

    try:
        conn = open_db("/var/lib/app/cio.spool", sync="group")
    except (sqlite3.Error, OSError) as exc:
        kind = fault_kind(exc)          # disk_full | read_only | corrupt | deleted | locked | other
        if kind == "corrupt":
            aside = move_aside(path)    # renamed with a ".corrupt-<time>" suffix, never overwritten

One table ``ops`` holds one row per accepted operation (its endpoint credentials, request and
body); ``owners`` holds one row per process handle (see :mod:`cioguard.delivery.spool_owners`).
The file is created with mode 0600 (it holds ``Authorization`` headers and personal data) and
opened in WAL mode. Nothing here keeps state: :class:`~cioguard.delivery.spool.Spool` does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from typing import Any

from cioguard.operations.model import Endpoint, Operation

#: The log is checkpointed past this many pages (1 MiB of 4 KiB pages; SQLite's default is 1000),
#: so what a checkpoint must add to the file stays inside the full-disk reserve (spool_space).
WAL_AUTOCHECKPOINT_PAGES = 256
#: ``PRAGMA journal_size_limit``: the log file's size after a checkpoint (2 MiB).
WAL_SIZE_LIMIT_BYTES = 2 * 1024 * 1024
#: A write waiting for another process's transaction gives up after this long (then retried).
BUSY_TIMEOUT_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    mem INTEGER NOT NULL,
    api TEXT NOT NULL, base_url TEXT NOT NULL, auth TEXT NOT NULL, label TEXT NOT NULL,
    method TEXT NOT NULL, route TEXT NOT NULL, http_method TEXT NOT NULL, path TEXT NOT NULL,
    body BLOB NOT NULL, shard_key TEXT NOT NULL, event_id TEXT, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ops_owner ON ops (owner, mem, seq);
CREATE TABLE IF NOT EXISTS owners (owner TEXT PRIMARY KEY, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
"""
#: Columns added to ``owners`` after the first release (older files are migrated on open):
#: ``locked`` = 1 when the owner holds its advisory lock file, ``host`` = kernel boot id + pid
#: namespace (a pid means something only where both match).
_OWNER_COLUMNS = {"locked": "INTEGER NOT NULL DEFAULT 0", "host": "TEXT NOT NULL DEFAULT ''"}

COLUMNS = (
    "op_id, owner, mem, api, base_url, auth, label, method, route, http_method, path, body, "
    "shard_key, event_id, created_at"
)
INSERT = f"INSERT OR IGNORE INTO ops ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
SELECT = (
    "SELECT seq, op_id, api, base_url, auth, label, method, route, http_method, path, body, "
    "shard_key, event_id, created_at FROM ops"
)

#: What to tell the user for each fault kind (logged once, with the path).
FIXES = {
    "disk_full": "free space on that filesystem (or move spool_path to a larger disk)",
    "read_only": "make the file and its directory writable by this process, or set spool_path elsewhere",
    "corrupt": "the damaged file was moved aside; run `cioguard replay --inspect` on it if needed",
    "deleted": "do not delete or rotate the spool file while processes use it",
    "locked": "another process holds a long write transaction on the file; it is retried",
    "other": "check the path, its filesystem and permissions",
}


def open_db(path: str, sync: str = "group") -> sqlite3.Connection:
    """Open (creating it with mode 0600) a spool database; raises ``sqlite3.Error``/``OSError``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    return _configure(
        sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False),
        sync,
    )


def open_existing(path: str, read_only: bool = False) -> sqlite3.Connection:
    """Open a spool that must already exist (``cioguard replay``); never creates a file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(errno.ENOENT, "no such spool file", path)
    mode = "ro" if read_only else "rw"
    uri = f"file:{_quote(path)}?mode={mode}"
    conn = sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    if read_only:
        conn.execute("SELECT COUNT(*) FROM ops").fetchall()  # not a spool: raises here
        return conn
    return _configure(conn, "always")


def _quote(path: str) -> str:
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _configure(conn: sqlite3.Connection, sync: str) -> sqlite3.Connection:
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'always' else 'NORMAL'}")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")  # inside the reserve
        # The log file is cut back to this after a checkpoint: a burst's log does not keep the disk.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}").fetchall()
        conn.executescript(_SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(owners)").fetchall()}
        for name, decl in _OWNER_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE owners ADD COLUMN {name} {decl}")
        conn.execute("SELECT COUNT(*) FROM owners").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn


def fault_kind(exc: BaseException) -> str:
    """The ``customerio_spool_errors_total{kind}`` value for an exception of the spool."""
    if isinstance(exc, sqlite3.Error):
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        text = str(exc).lower()
        if name == "SQLITE_READONLY_DBMOVED":
            return "deleted"
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            return "disk_full"
        if name.startswith("SQLITE_READONLY") or "readonly" in text:
            return "read_only"
        if (
            name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
            or "not a database" in text
            or "malformed" in text
        ):
            return "corrupt"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            return "locked"
        if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
            return "read_only"
        return "other"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "disk_full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read_only"
    return "other"  # e.g. ENOENT: the directory does not exist


def move_aside(path: str) -> str:
    """Rename a damaged spool (and its WAL/SHM files) with a ``.corrupt-<utc time>`` suffix.

    Never overwrites: the name also carries the pid and, if still taken, a counter.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = f"{path}.corrupt-{stamp}-{os.getpid()}"
    target, n = base, 0
    while os.path.exists(target):
        n += 1
        target = f"{base}.{n}"
    os.rename(path, target)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.rename(path + suffix, target + suffix)
    return target


def file_identity(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file at ``path``, None when it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def op_to_row(op: Operation, owner: str, in_memory: bool) -> tuple[Any, ...]:
    ep = op.endpoint
    return (
        op.op_id,
        owner,
        1 if in_memory else 0,
        ep.api,
        ep.base_url,
        ep.auth_header,
        ep.label,
        op.method,
        op.route,
        op.http_method,
        op.path,
        op.body,
        op.shard_key,
        op.event_id,
        op.created_at or time.time(),
    )


def row_to_op(row: tuple[Any, ...]) -> Operation:
    """An :class:`Operation` from a ``SELECT`` row without its leading ``seq``."""
    (
        op_id,
        api,
        base_url,
        auth,
        label,
        method,
        route,
        http_method,
        path,
        body,
        shard_key,
        event_id,
        created,
    ) = row
    endpoint = Endpoint(api=api, base_url=base_url, auth_header=auth, label=label)
    return Operation(
        endpoint=endpoint,
        method=method,
        route=route,
        http_method=http_method,
        path=path,
        body=bytes(body),
        shard_key=shard_key,
        op_id=op_id,
        event_id=event_id,
        created_at=created,
        enqueued_at=time.monotonic(),
    )
