"""Repairs of a spool file that went bad under a running process (a mixin of ``SpoolCore``).

- **corrupt** (SQLite says the file is not a database or malformed): the connection is closed,
  the file and its ``-wal``/``-shm`` are renamed ``<path>.corrupt-<time>`` (never overwritten),
  a new file is created; spilled rows that were only on the damaged file are counted as lost.
- **deleted or replaced** (the path is gone, points at another file, or our lock file is gone):
  this process's rows are read from the still-open old file and written into a new file at the
  path (or merged into the one another process already recreated), with a fresh owner lock.

Invariant: a WAL file is only ever deleted by name while that name still belongs to our old
file. When the path is gone, the old connection first leaves WAL mode (``journal_mode=DELETE``,
which checkpoints and removes the old ``-wal`` by its still-correct name) and is closed before the
new file exists; when that is impossible (the old file is shared), or the path already holds a
new file, the old connection is kept open, unused, for the life of the process.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from cioguard.delivery.spool_health import SpoolHealth
from cioguard.delivery.spool_owners import OwnerLock, register
from cioguard.delivery.spool_store import COLUMNS, INSERT, fault_kind, file_identity, move_aside, row_to_op
from cioguard.operations.model import Operation

#: Old connections that must never be closed (see the module docstring).
_KEPT_OPEN: list[Any] = []


class SpoolRepair:
    path: str
    _sync: str
    _conn: Any
    _owner: str | None
    _owner_lock: OwnerLock | None
    _identity: tuple[int, int] | None
    _health: SpoolHealth
    _db_rows: int
    _spilled_rows: int
    _last_try: float
    _connect: Callable[[str, str], Any]
    _held: deque[Operation]

    def _usable(self) -> Any:
        raise NotImplementedError

    def _replace_corrupt(self, exc: BaseException) -> Any:
        """At open: the file is damaged. Move it aside and open a new one (None if impossible)."""
        try:
            aside = move_aside(self.path)
            self._health.fault("corrupt", exc, f"moved aside to {aside}; a new spool is used")
            return self._connect(self.path, self._sync)
        except Exception as exc2:
            self._health.fault(fault_kind(exc2), exc2)
            return None

    def _fault(self, exc: BaseException) -> None:
        """A failed transaction (lock held): classify, and repair what can be repaired now."""
        kind = fault_kind(exc)
        if kind == "corrupt" and self._conn is not None:
            self._abandon_conn()
            self._health.lose("spool_error", self._spilled_rows)  # they were on the damaged file
            self._spilled_rows = self._db_rows = 0
            try:
                aside = move_aside(self.path)
            except Exception as exc2:
                self._health.fault(fault_kind(exc2), exc2)
                return
            self._health.fault("corrupt", exc, f"moved aside to {aside}; a new spool is used")
            self._last_try = float("-inf")
            self._usable()
            return
        if kind == "deleted" and self._conn is not None:
            self._recreate()
            return
        self._health.fault(kind, exc)

    def _abandon_conn(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        if self._owner_lock is not None:
            self._owner_lock.release()
        self._conn = self._owner_lock = None

    def _recreate(self) -> None:
        """The file at our path is gone or another one: recreate it with our rows and lock."""
        old, owner, lock = self._conn, self._owner, self._owner_lock
        if owner is None or lock is None:
            return
        try:
            rows = old.execute(f"SELECT {COLUMNS} FROM ops WHERE owner = ?", (owner,)).fetchall()
        except Exception as exc:
            self._health.fault("deleted", exc, "its rows could not be read back; they are not durable")
            return
        if file_identity(self.path) is None:
            try:
                old.execute("PRAGMA journal_mode=DELETE").fetchall()  # old -wal removed by its own name
                old.close()
            except Exception:
                _KEPT_OPEN.append(old)
                for suffix in ("-wal", "-shm"):  # stale names must not join the new file
                    with contextlib.suppress(OSError):
                        os.unlink(self.path + suffix)
        else:
            _KEPT_OPEN.append(old)
        self._conn = None
        try:
            new = self._connect(self.path, self._sync)
            if not lock.intact():
                lock.forget_after_fork()
                lock = OwnerLock(self.path, owner)
            new.execute("BEGIN IMMEDIATE")
            register(new, owner, lock)
            new.executemany(INSERT, rows)
            new.execute("COMMIT")
        except Exception as exc:
            self._health.fault("deleted", exc, "it could not be recreated; operations stay in memory")
            # Spilled rows live on only in memory now (reload() hands them out); the in-memory
            # ones are in the engine's queue already.
            self._held.extend(row_to_op((r[0], *r[3:])) for r in rows if not r[2])
            self._db_rows = self._spilled_rows = 0
            self._last_try = float("-inf")
            return
        self._owner_lock = lock
        self._conn, self._identity = new, file_identity(self.path)
        self._health.fault("deleted", None, f"recreated with this process's {len(rows)} operation(s)")
        self._health.recovered()
