"""The writer side of the spool: group commits, heartbeats, claims and probes (a mixin of ``SpoolCore``).

A daemon thread per process (started on first use in that pid) commits the queued writes every
:data:`GROUP_COMMIT_SECONDS` (or at once with ``sync="always"``) in one transaction, and every
:data:`HEARTBEAT_SECONDS` refreshes the owner row, checks that the file is still ours, claims the
rows of dead owners (telling ``on_claim``) and, while a fault lasts, probes whether the disk takes
data again. Every SQLite call happens with ``self._lock`` held; the thread never dies.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cioguard import forks
from cioguard.delivery.spool_owners import claim_dead, register
from cioguard.delivery.spool_repair import SpoolRepair
from cioguard.delivery.spool_space import (
    NO_ROOM,
    ROOM_BYTES,
    Command,
    SpaceKeeper,
    checkpoint,
    give_room,
    keep_room,
    low_space,
    probe_op,
)
from cioguard.delivery.spool_store import BUSY_TIMEOUT_SECONDS, INSERT, fault_kind, file_identity, op_to_row
from cioguard.operations.model import Operation
from cioguard.threads import daemon_thread

logger = logging.getLogger("cioguard.delivery")

HEARTBEAT_SECONDS = 2.0
GROUP_COMMIT_SECONDS = 0.005


class SpoolWriter(SpoolRepair, SpaceKeeper):
    _lock: threading.Lock
    _pending: deque[Command]
    _thread: threading.Thread | None
    _wake: threading.Event
    _closed: bool
    _pid: int
    _bytes: int
    _last_beat: float
    _room_after: float
    _space_checked_at: float
    _space_low: bool
    on_claim: Callable[[int], None] | None

    def _check_pid(self) -> None:
        raise NotImplementedError

    def _start_writer(self) -> None:
        if self._thread is not None or self._closed:
            return
        if forks.uwsgi_master_before_fork():
            # No thread in a uWSGI master before it forks its workers: uWSGI forks from C without
            # Python's fork hooks, and a worker forked while this thread held the GIL never gets
            # it (a hang at start). What the master queues meanwhile is committed at its close.
            return
        if self._thread is None and not self._closed:
            with self._lock:
                if self._thread is not None:
                    return
                self._thread = daemon_thread(self._writer, "cioguard-spool")
            self._thread.start()

    def _writer(self) -> None:
        pid = os.getpid()
        while not self._closed and self._pid == pid:
            self._wake.wait(GROUP_COMMIT_SECONDS if self._sync == "group" else HEARTBEAT_SECONDS)
            self._wake.clear()
            try:
                self.drain()
                if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                    self._maintain()
            except Exception as exc:  # the writer never dies
                logger.debug("cioguard spool writer: %r", exc)

    def drain(self) -> bool:
        """Commit everything queued so far; False when it failed (rows kept or held in memory)."""
        self._check_pid()
        with self._lock:
            return self._drain_locked()

    def _drain_locked(self) -> bool:
        commands: list[Command] = []
        while self._pending:
            commands.append(self._pending.popleft())
        if not commands:
            return True
        conn = self._usable()
        if conn is not None and self._short_of_space(commands):
            return self._drain_without_adds(conn, commands)
        if conn is not None:
            try:
                self._execute(conn, commands)
                self._after_success(wrote_rows=any(c[0] == "add" for c in commands))
                return True
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                if fault_kind(exc) == "locked":
                    self._pending.extendleft(reversed(commands))  # retried next round, in order
                    return False
                kind = fault_kind(exc)
                if kind in NO_ROOM and time.monotonic() >= self._room_after:
                    adds = any(c[0] == "add" for c in commands)
                    if kind == "disk_full" and not all(c[0] == "add" for c in commands):
                        give_room(self.path)  # the reserve is for deletions: they free the file
                    commands, error = self._make_room(conn, commands)
                    if error is None:
                        self._after_success(wrote_rows=adds)  # deletions alone end no episode
                        return True
                    exc = error
                self._fault(exc)
        self._keep_failed(commands)
        return False

    def commit_pending(self, timeout: float) -> bool:
        """Commit the writes queued before this call, waiting at most ``timeout`` s for the writer
        thread or a file another process keeps busy; True once they are on disk. Never raises.

        ``flush()`` calls it: the deletions of what was just delivered must be on disk before a
        caller that leaves without the exit hooks (``os._exit`` in a forked child, a SIGKILL, a
        frozen serverless instance) is told True, or the next process sends those rows again.
        A failing spool is not waited for (its rows are resent at worst, never lost).
        """
        try:
            self._check_pid()
            end = time.monotonic() + max(0.0, timeout)
            while not self._closed and not self._failing_now():
                # Holding the lock means no commit is in flight: the writer pops the queue and
                # commits it under this lock, so an empty queue seen here is on disk.
                if not self._lock.acquire(timeout=max(0.0, end - time.monotonic())):
                    return False
                try:
                    # One successful drain commits everything queued before this call (FIFO), so
                    # calls other threads keep making cannot keep us here.
                    if not self._pending or self._drain_polling():
                        return True
                finally:
                    self._lock.release()
                if time.monotonic() >= end:
                    break
                time.sleep(0.001)  # "locked": retried, bounded by ``timeout``
            return not self._pending
        except Exception as exc:
            logger.debug("cioguard spool commit_pending: %r", exc)
            return False

    def _drain_polling(self) -> bool:
        """``_drain_locked`` without SQLite's busy wait (lock held): its growing sleeps miss the
        short gaps between another process's group commits (a forked child waited 4 s)."""
        conn = self._conn
        if conn is not None:
            conn.execute("PRAGMA busy_timeout = 0")
        try:
            return self._drain_locked()
        finally:
            if conn is not None and self._conn is conn:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")

    def _failing_now(self) -> bool:
        return self._health.state not in (None, "locked")

    def _after_success(self, wrote_rows: bool = True) -> None:
        """A transaction committed. Only one that wrote operation rows ends a disk_full or
        read_only episode (a heartbeat fits in pages the file already has)."""
        state = self._health.state
        if state is None or file_identity(self.path) != self._identity:
            return
        if wrote_rows or state in ("locked", "deleted"):
            self._health.recovered()
            keep_room(self.path)  # given up for deletions during the fault: take it back

    def _probe(self, conn: Any) -> None:
        """While failing (lock held): try to write the held operations (or one probe row)."""
        checkpoint(conn)  # first: a log that filled the disk (maybe our own) is in the way
        held = list(self._held)
        if low_space(self.path, 3 * sum(op.size for op in held), ROOM_BYTES):
            return  # still nearly full: nothing to learn by writing
        probe = [("add", op, False) for op in held] or [("add", probe_op(self._owner or ""), False)]
        try:
            self._execute(conn, probe)
            if not held:
                self._execute(conn, [("ack", [probe[0][1].op_id], None)])
        except Exception as exc:
            if conn.in_transaction:
                conn.rollback()
            self._fault(exc)
            return
        for _ in held:
            self._held.popleft()
        self._after_success()

    def _keep_failed(self, commands: list[Command]) -> None:
        """After a failed write: spilled operations stay ours in memory, ack/park are retried."""
        retry: list[Command] = []
        for kind, payload, flag in commands:
            if kind == "add":
                self._bytes = max(0, self._bytes - payload.size)
                if not flag:
                    self._held.append(payload)
            else:
                retry.append((kind, payload, flag))
        self._pending.extendleft(reversed(retry))

    def _execute(self, conn: Any, commands: list[Command]) -> None:
        """Apply ``commands`` in order inside one transaction; keeps the row counts exact."""
        owner = self._owner
        conn.execute("BEGIN IMMEDIATE")
        inserted = deleted = spilled = 0
        adds: list[tuple[Any, ...]] = []
        for kind, payload, flag in [*commands, ("end", None, None)]:
            if kind == "add":
                adds.append(op_to_row(payload, owner or "", bool(flag)))
                spilled += 0 if flag else 1
                continue
            if adds:
                inserted += conn.executemany(INSERT, adds).rowcount
                adds = []
            if kind == "ack":
                deleted += conn.executemany(
                    "DELETE FROM ops WHERE op_id = ?", [(i,) for i in payload]
                ).rowcount
            elif kind == "park":
                parked = conn.executemany(
                    "UPDATE ops SET mem = 0 WHERE op_id = ? AND owner = ?", [(i, owner) for i in payload]
                ).rowcount
                spilled += parked
        conn.execute("COMMIT")
        self._db_rows += inserted - deleted
        self._spilled_rows = max(0, self._spilled_rows + spilled)

    def _add_now(self, op: Operation, in_memory: bool) -> bool:
        with self._lock:
            conn = self._usable()
            if conn is not None:
                try:
                    self._execute(conn, [("add", op, in_memory)])
                    self._after_success()
                    return True
                except Exception as exc:
                    if conn.in_transaction:
                        conn.rollback()
                    self._fault(exc)
            self._bytes = max(0, self._bytes - op.size)
            return False

    def _maintain(self) -> None:
        """Every HEARTBEAT_SECONDS: heartbeat, file still ours, claim dead owners' rows."""
        self._last_beat = time.monotonic()
        with self._lock:
            conn = self._usable()
            if conn is None or self._owner is None:
                return
            lock = self._owner_lock
            if file_identity(self.path) != self._identity or (lock is not None and not lock.intact()):
                self._recreate()
                conn = self._conn
                if conn is None:
                    return
            try:
                conn.execute("BEGIN IMMEDIATE")
                assert lock is not None
                register(conn, self._owner, self._owner_lock or lock)
                claimed = claim_dead(conn, self.path, self._owner)
                conn.execute("COMMIT")
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                self._fault(exc)
                return
            self._db_rows += claimed
            self._spilled_rows += claimed
            self._after_success(wrote_rows=False)
            if self._health.state not in (None, "locked", "deleted"):
                self._probe(conn)
        if claimed:
            logger.info("cioguard: claimed %d operation(s) of a dead process from the spool", claimed)
            callback = getattr(self, "on_claim", None)
            if callback is not None:
                try:
                    callback(claimed)
                except Exception as exc:
                    logger.debug("cioguard spool on_claim: %r", exc)
