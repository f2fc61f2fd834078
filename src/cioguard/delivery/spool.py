"""Durable SQLite (WAL) spool: accepted operations survive a crash and are delivered later.

Enable it with ``DeliveryConfig(spool_path="/var/lib/app/cio.spool")``. Each accepted operation
is written as a row and deleted only after Customer.io acknowledged it (or finally rejected it),
so a crashed process loses nothing: the next process opening the spool claims the rows of dead
owners and delivers them (exactly once at Customer.io, which dedupes events by ULID ``id``).

- ``spool_sync="always"``: the row is committed (fsync'ed WAL) before ``submit`` returns.
- ``spool_sync="group"``: rows are committed by a writer thread every few milliseconds (a crash
  loses at most the last few ms of operations; much cheaper per submit).

**The file holds each endpoint's base URL and ``Authorization`` header** (so a restarted process
can deliver) and personal data: it is created with mode 0600; keep it on a private disk.
Several processes may share one file: rows carry an owner (pid + random token) with a heartbeat,
and rows are claimed from dead owners inside an ``IMMEDIATE`` transaction, so two processes
never send the same row.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from typing import Any

from cioguard.operations.model import Endpoint, Operation

#: An owner whose heartbeat is older than this is presumed dead.
LEASE_SECONDS = 15.0
HEARTBEAT_SECONDS = 2.0
GROUP_COMMIT_SECONDS = 0.005

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
_COLUMNS = (
    "op_id, owner, mem, api, base_url, auth, label, method, route, http_method, path, body, "
    "shard_key, event_id, created_at"
)
_INSERT = f"INSERT OR IGNORE INTO ops ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def open_db(path: str, sync: str = "group") -> sqlite3.Connection:
    """Open (and create with mode 0600) a spool database."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if sync == 'always' else 'NORMAL'}")
    conn.executescript(_SCHEMA)
    return conn


def row_to_op(row: tuple[Any, ...]) -> Operation:
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


_SELECT = (
    "SELECT seq, op_id, api, base_url, auth, label, method, route, http_method, path, body, shard_key, "
    "event_id, created_at FROM ops"
)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """One process's handle on the spool file. All methods are thread-safe and never raise
    into the engine except on open (a bad path is a configuration error)."""

    def __init__(self, path: str, sync: str = "group", max_bytes: int = 256 * 1024 * 1024) -> None:
        self.path = path
        self._sync = sync
        self._max_bytes = max_bytes
        self._abandoned: list[sqlite3.Connection] = []
        self._open()

    def _open(self) -> None:
        self._lock = threading.Lock()
        self._conn = open_db(self.path, self._sync)
        self._owner = f"{os.getpid()}:{secrets.token_hex(6)}"
        self._pending: deque[tuple[str, Any]] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._rows = 0
        self._bytes = 0
        self._count_lock = threading.Lock()
        self._last_beat = 0.0
        with self._lock:
            self._beat()
        self._thread = threading.Thread(target=self._writer, name="cioguard-spool", daemon=True)
        self._thread.start()

    def after_fork(self) -> None:
        """In the child: a new connection, owner and writer; the parent keeps its own rows."""
        self._abandoned.append(self._conn)  # never close the parent's connection from the child
        self._open()

    # -- writes ---------------------------------------------------------------------------------

    def add(self, op: Operation, in_memory: bool = True) -> bool:
        """Persist ``op``; False when the spool is full (``spool_max_bytes``). ``in_memory=False``
        spills it: it stays on disk until :meth:`reload`."""
        with self._count_lock:
            if self._closed or self._bytes + op.size > self._max_bytes:
                return False
            self._bytes += op.size
            self._rows += 1
        ep = op.endpoint
        row = (
            op.op_id,
            self._owner,
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
        if self._sync == "always":
            try:
                with self._lock:
                    self._conn.execute(_INSERT, row)
            except sqlite3.Error:
                with self._count_lock:
                    self._bytes -= op.size
                    self._rows -= 1
                return False
            return True
        self._pending.append(("add", row))
        return True

    def ack(self, ops: list[Operation]) -> None:
        """Forget operations that were acknowledged (or finally failed)."""
        if self._closed:
            return  # closed at shutdown: the next owner resends; Customer.io dedupes by event id
        with self._count_lock:
            self._bytes = max(0, self._bytes - sum(op.size for op in ops))
            self._rows = max(0, self._rows - len(ops))
        ids = [(op.op_id,) for op in ops]
        if self._sync == "always":
            self._run([("ack", ids)])
        else:
            self._pending.append(("ack", ids))

    def _run(self, commands: list[tuple[str, Any]]) -> None:
        with self._lock:
            self._execute(commands)

    def _execute(self, commands: list[tuple[str, Any]]) -> None:
        """Apply commands in order inside one transaction (lock held)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            adds: list[Any] = []
            for kind, payload in commands:
                if kind == "add":
                    adds.append(payload)
                    continue
                if adds:
                    conn.executemany(_INSERT, adds)
                    adds = []
                conn.executemany("DELETE FROM ops WHERE op_id = ?", payload)
            if adds:
                conn.executemany(_INSERT, adds)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def drain(self) -> None:
        """Commit everything queued so far (group mode)."""
        with self._lock:
            commands = []
            while self._pending:
                commands.append(self._pending.popleft())
            if commands:
                try:
                    self._execute(commands)
                except sqlite3.Error:
                    self._pending.extendleft(reversed(commands))  # retried next round, in order
                    raise

    def _beat(self) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO owners (owner, pid, heartbeat) VALUES (?, ?, ?)",
            (self._owner, os.getpid(), time.time()),
        )
        self._last_beat = time.monotonic()

    def _writer(self) -> None:
        pid = os.getpid()
        while not self._closed and os.getpid() == pid:
            self._wake.wait(GROUP_COMMIT_SECONDS if self._sync == "group" else HEARTBEAT_SECONDS)
            try:
                self.drain()
                if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                    with self._lock:
                        self._beat()
            except sqlite3.Error:
                time.sleep(0.05)  # locked by another process: the next round retries

    # -- reads ----------------------------------------------------------------------------------

    def recover(self, limit: int) -> tuple[list[Operation], int]:
        """Claim the rows of dead owners. Returns up to ``limit`` operations (oldest first, now
        in memory) and how many more were claimed but left on disk (spilled)."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                stale = time.time() - LEASE_SECONDS
                owners = conn.execute("SELECT owner, pid, heartbeat FROM owners").fetchall()
                dead = [
                    o for o, pid, beat in owners if o != self._owner and (beat < stale or not pid_alive(pid))
                ]
                known = {o for o, _, _ in owners}
                orphan = [
                    o
                    for (o,) in conn.execute("SELECT DISTINCT owner FROM ops")
                    if o not in known and o != self._owner
                ]
                for owner in dead + orphan:
                    conn.execute("UPDATE ops SET owner = ?, mem = 0 WHERE owner = ?", (self._owner, owner))
                    conn.execute("DELETE FROM owners WHERE owner = ?", (owner,))
                ops = self._load(limit)
                rest = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM ops WHERE owner = ?", (self._owner,)
                ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        with self._count_lock:
            self._rows += int(rest[0])
            self._bytes += int(rest[1])
        return ops, int(rest[0]) - len(ops)

    def _load(self, limit: int) -> list[Operation]:
        rows = self._conn.execute(
            _SELECT + " WHERE owner = ? AND mem = 0 ORDER BY seq LIMIT ?", (self._owner, limit)
        ).fetchall()
        if rows:
            self._conn.executemany("UPDATE ops SET mem = 1 WHERE seq = ?", [(r[0],) for r in rows])
        return [row_to_op(r[1:]) for r in rows]

    def reload(self, limit: int) -> list[Operation]:
        """Move up to ``limit`` spilled rows of this process back to memory, oldest first."""
        self.drain()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                ops = self._load(limit)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ops

    def count(self) -> int:
        return self._rows

    def close(self, timeout: float = 1.0) -> None:
        """Commit what is queued and release ownership so the next process can claim at once."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(max(0.0, timeout))
        try:
            self.drain()
            with self._lock:
                # heartbeat 0 = released: our remaining rows are claimable immediately.
                self._conn.execute("UPDATE owners SET heartbeat = 0 WHERE owner = ?", (self._owner,))
                self._conn.close()
        except sqlite3.Error:
            pass
