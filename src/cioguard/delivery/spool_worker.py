"""The state under :class:`~cioguard.delivery.spool.Spool`: connection, owner, reads, close.

Not used directly: :class:`SpoolCore` holds one process's connection (opened lazily, in the pid
that uses it, retried every :data:`RETRY_SECONDS` while it fails), its owner and lock, the row
counts, and the reads (claim + load, expire, persist at shutdown, close). The writer thread is in
:mod:`cioguard.delivery.spool_writer`, fault repairs in :mod:`cioguard.delivery.spool_repair`.
Every SQLite call happens with ``self._lock`` held.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cioguard.delivery.spool_health import SpoolHealth
from cioguard.delivery.spool_owners import OwnerLock, claim_dead, register
from cioguard.delivery.spool_space import Command, keep_room
from cioguard.delivery.spool_store import (
    SELECT,
    fault_kind,
    file_identity,
    row_to_op,
)
from cioguard.delivery.spool_writer import SpoolWriter
from cioguard.operations.model import Operation

logger = logging.getLogger("cioguard.delivery")

#: A failing spool is probed (reopened, rewritten) this often.
RETRY_SECONDS = 2.0


class SpoolCore(SpoolWriter):
    def __init__(self, path: str, sync: str, connect: Callable[[str, str], Any], health: SpoolHealth) -> None:
        self.path = path
        self._sync = sync
        self._connect = connect
        self._health = health
        self._abandoned: list[Any] = []  # connections inherited over fork: never used nor closed
        self._lock = threading.Lock()
        self._conn: Any = None
        self._init_state()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._pending: deque[Command] = deque()
        #: Spilled operations the disk refused: still ours, handed out by reload().
        self._held: deque[Operation] = deque()
        self._db_rows = 0  # our rows on disk, exact (from rowcounts)
        self._spilled_rows = 0  # of which spilled (mem = 0), for counting losses
        self._bytes = 0
        self._owner: str | None = None
        self._owner_lock: OwnerLock | None = None
        self._identity: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._last_beat = time.monotonic()
        self._last_try = float("-inf")
        self._room_after = float("-inf")  # next time a full disk may be made room in
        self._roomy_until = float("-inf")  # until then, free space need not be looked at

    @property
    def health_state(self) -> str | None:
        return self._health.state

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            self.after_fork()

    def after_fork(self) -> None:  # overridden by Spool
        self._reset_for_child()

    def _reset_for_child(self) -> None:
        # Only Python objects are replaced here: a parent thread may have held any of them.
        self._lock = threading.Lock()
        if self._conn is not None:
            self._abandoned.append(self._conn)
        self._conn = None
        if self._owner_lock is not None:
            self._owner_lock.forget_after_fork()
        self._health = SpoolHealth(self.path, self._health._recorder)
        self._init_state()

    # -- connection (lock held) ---------------------------------------------------------------

    def _usable(self) -> Any:
        """The open connection, opening it if needed (failures are retried every RETRY_SECONDS)."""
        if self._conn is not None or self._closed:
            return self._conn
        now = time.monotonic()
        if now - self._last_try < RETRY_SECONDS:
            return None
        self._last_try = now
        try:
            conn = self._connect(self.path, self._sync)
        except Exception as exc:
            if fault_kind(exc) != "corrupt":
                self._health.fault(fault_kind(exc), exc)
                return None
            conn = self._replace_corrupt(exc)
            if conn is None:
                return None
        token = f"{os.getpid()}:{secrets.token_hex(6)}"
        lock = OwnerLock(self.path, token)
        try:
            register(conn, token, lock)
        except Exception as exc:
            lock.release()
            conn.close()
            self._health.fault(fault_kind(exc), exc)
            if fault_kind(exc) == "locked":
                self._last_try = float("-inf")  # busy, not broken: the next use tries again
            return None
        self._conn, self._owner, self._owner_lock = conn, token, lock
        self._identity = file_identity(self.path)
        self._health.recovered()
        keep_room(self.path)  # disk space a full disk gives back for deletions (spool_space)
        return conn

    # -- reads (lock held inside) -----------------------------------------------------------------

    def _claim_and_load(
        self, limit: int, max_age: float, orphans: bool, claim: bool = True
    ) -> tuple[list[Operation], int]:
        with self._lock:
            conn = self._usable()
            if conn is None or self._owner is None:
                return [], 0
            owner = self._owner
            try:
                conn.execute("BEGIN IMMEDIATE")
                claimed = claim_dead(conn, self.path, owner, orphans) if claim else 0
                expired = conn.execute(
                    "DELETE FROM ops WHERE owner = ? AND mem = 0 AND created_at < ?",
                    (owner, time.time() - max_age),
                ).rowcount
                rows = conn.execute(
                    SELECT + " WHERE owner = ? AND mem = 0 ORDER BY seq LIMIT ?", (owner, max(0, limit))
                ).fetchall()
                ops, bad = _decode(rows)
                conn.executemany("UPDATE ops SET mem = 1 WHERE seq = ?", [(r[0],) for r in rows])
                conn.executemany("DELETE FROM ops WHERE seq = ?", [(seq,) for seq in bad])
                total, spilled = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(mem = 0), 0) FROM ops WHERE owner = ?", (owner,)
                ).fetchone()
                conn.execute("COMMIT")
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                self._fault(exc)
                return [], 0
            self._db_rows, self._spilled_rows = int(total), int(spilled)
            self._after_success(wrote_rows=False)
        self._health.lose("expired", expired)
        if bad:  # rows no operation can be made of (damaged or foreign): counted, never sent
            self._health.note("corrupt", f"{len(bad)} unreadable row(s) removed")
            self._health.lose("spool_error", len(bad))
        if claimed:
            logger.info("cioguard: claimed %d operation(s) left in the spool by earlier processes", claimed)
        return ops, int(spilled)

    def _expire(self, max_age: float) -> int:
        with self._lock:
            conn = self._usable()
            if conn is None:
                return 0
            try:
                n = int(
                    conn.execute(
                        "DELETE FROM ops WHERE owner = ? AND mem = 0 AND created_at < ?",
                        (self._owner, time.time() - max_age),
                    ).rowcount
                )
            except Exception as exc:
                self._fault(exc)
                return 0
            self._db_rows -= n
            self._spilled_rows = max(0, self._spilled_rows - n)
        self._health.lose("expired", n)
        return n

    def _persist(self, ops: list[Operation]) -> list[Operation]:
        """Make sure ``ops`` have rows (at shutdown); returns those that are not durable."""
        if not ops:
            return []
        self.drain()
        with self._lock:
            conn = self._usable()
            if conn is None:
                return list(ops)
            try:
                self._execute(conn, [("add", op, True) for op in ops])  # present rows are ignored
                return []
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                self._fault(exc)
            try:  # reads usually still work on a full or read-only disk
                present: set[str] = set()
                ids = [op.op_id for op in ops]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    query = f"SELECT op_id FROM ops WHERE op_id IN ({','.join('?' * len(chunk))})"
                    present.update(i for (i,) in self._conn.execute(query, chunk).fetchall())
                return [op for op in ops if op.op_id not in present]
            except Exception:
                return list(ops)

    def _close_now(self) -> bool:
        """Final commit (held operations too, if the disk takes them now) and release."""
        ok = self.drain()
        with self._lock:
            held = list(self._held)
            self._held.clear()
            conn = self._conn
            if held and conn is not None:
                try:
                    self._execute(conn, [("add", op, False) for op in held])
                    held = []
                except Exception:
                    if conn.in_transaction:
                        conn.rollback()
            if held:
                self._health.lose("spool_error", len(held))
                ok = False
            if conn is not None:
                try:
                    # heartbeat 0 = released: our remaining rows are claimable at once.
                    conn.execute("UPDATE owners SET heartbeat = 0 WHERE owner = ?", (self._owner,))
                except Exception:
                    ok = False
                try:
                    conn.close()
                except Exception:
                    ok = False
            if self._owner_lock is not None:
                self._owner_lock.release()
            self._conn = None
        return ok


def _decode(rows: list[Any]) -> tuple[list[Operation], list[int]]:
    """Operations from ``SELECT`` rows, and the ``seq`` of rows that are not operations."""
    ops: list[Operation] = []
    bad: list[int] = []
    for row in rows:
        try:
            ops.append(row_to_op(tuple(row[1:])))
        except Exception:
            bad.append(int(row[0]))
    return ops, bad
