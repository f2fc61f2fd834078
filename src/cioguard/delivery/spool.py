"""Durable SQLite (WAL) spool: accepted operations survive crashes, outages and restarts.

Enable it with ``DeliveryConfig(spool_path="/var/lib/app/cio.spool")``. The engine uses it so::

    spool = Spool(path, "group", max_bytes, max_age=7 * 86400, recorder=rec, resolve=resolver,
                  on_claim=lambda n: ...)      # never raises, whatever the file's state
    spool.recover(limit) -> (ops, rest)        # claim dead owners' rows: ops now, ``rest`` on disk
    spool.add(op, in_memory=True) -> bool      # False: not durable (full or failing); keep it in memory
    spool.ack(ops) -> bool                     # delivered or finally rejected: rows deleted
    spool.park(ops) -> bool                    # undelivered for now: back to disk, reload() later
    spool.reload(limit) -> list[Operation]     # spilled rows back to memory, oldest first
    spool.expire(max_age=None) -> int          # rows older than spool_max_age dropped as expired
    spool.persist(ops) -> list[Operation]      # at shutdown: rows for these; returns the non-durable
    spool.failing() -> bool                    # a fault keeps new operations out (memory only)
    spool.count() -> int; spool.health() -> dict; spool.take_losses() -> {reason: n}
    spool.commit_pending(timeout) -> bool      # queued writes (deletions) on disk now, bounded
    commit_all(timeout) -> bool                # the same for every spool open in this process
    spool.after_fork(); spool.close(timeout) -> bool

Invariants:

- **Only success shrinks it.** A row is deleted by :meth:`ack` (accepted or finally rejected) or
  by expiry (older than ``max_age``). Transient failures, outages, shutdown and exit never delete.
- **Never raises.** Every method returns a status. A fault (disk full, read-only, corrupt,
  deleted, locked) is logged once with the path and the fix, counted in the
  ``customerio_spool_errors_total{kind}`` metric and shown by :meth:`health`; meanwhile
  operations stay in memory. Anything the spool can no longer deliver is reported by
  :meth:`take_losses` (the engine counts it as dropped, so ``flush()`` returns False).
- A corrupt file is moved aside (``<path>.corrupt-<time>``), never overwritten; a deleted file is
  recreated with this process's rows.
- **Ownership** (:mod:`cioguard.delivery.spool_owners`): rows belong to a live owner until it
  dies or closes; dead owners' rows are claimed at start and every few seconds while running
  (``on_claim(n)`` tells the engine), and go to the endpoint ``resolve`` maps them to (credentials
  from the row, base URL from the current configuration).
- **Fork-safe**: the at-fork hooks only swap Python objects (no SQLite call); before a fork the
  handle's lock is taken so no SQLite call is in flight; the child opens its own connection on
  first use, under its own owner, and never touches the parent's.
- ``sync="always"``: a row is committed before :meth:`add` returns; ``"group"``: a writer thread
  commits every few milliseconds (a crash loses at most that window).

**The file holds each endpoint's ``Authorization`` header and personal data**: it is created
with mode 0600; keep it on a private disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from cioguard import forks
from cioguard.delivery.spool_health import SpoolHealth
from cioguard.delivery.spool_owners import LEASE_SECONDS, pid_alive
from cioguard.delivery.spool_store import open_db
from cioguard.delivery.spool_worker import SpoolCore
from cioguard.delivery.spool_writer import GROUP_COMMIT_SECONDS, HEARTBEAT_SECONDS
from cioguard.operations.endpoints import APP_PREFIXES, TRACK_PREFIXES, mount
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import Recorder

__all__ = [
    "GROUP_COMMIT_SECONDS",
    "HEARTBEAT_SECONDS",
    "LEASE_SECONDS",
    "Spool",
    "commit_all",
    "endpoint_resolver",
    "open_db",
    "pid_alive",
]

#: A fork waits at most this long for a spool write in flight (then the child goes memory-only).
FORK_WAIT_SECONDS = 1.0
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
#: Writes queued for the writer thread at most (group mode); beyond, add() says "not durable".
MAX_PENDING = 100_000

#: Every spool handle open in this process (what ``commit_all`` commits).
_open: weakref.WeakSet[Spool] = weakref.WeakSet()


def commit_all(timeout: float) -> bool:
    """Commit the queued writes of every spool open in this process within ``timeout`` s in all
    (``flush()`` calls it so delivered rows are deleted on disk before it returns)."""
    end = time.monotonic() + max(0.0, timeout)
    done = True
    for spool in list(_open):
        done = spool.commit_pending(end - time.monotonic()) and done
    return done


def endpoint_resolver(track_url: str | None, api_url: str | None) -> Callable[[Endpoint], Endpoint]:
    """Recovered rows keep their credentials and take the configured base URL (if any) of their API."""

    def resolve(endpoint: Endpoint) -> Endpoint:
        base = track_url if endpoint.api == "track" else api_url
        if not base:
            return endpoint
        # The same base as live operations get (a gateway path kept, "/api/v1" not doubled).
        prefixes = TRACK_PREFIXES if endpoint.api == "track" else APP_PREFIXES
        return Endpoint(endpoint.api, mount(base, prefixes), endpoint.auth_header, endpoint.label)

    return resolve


class Spool(SpoolCore):
    """One process's handle on the spool file; thread-safe, fork-safe, never raises."""

    def __init__(
        self,
        path: str,
        sync: str = "group",
        max_bytes: int = 256 * 1024 * 1024,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        recorder: Recorder | None = None,
        resolve: Callable[[Endpoint], Endpoint] | None = None,
        on_claim: Callable[[int], None] | None = None,
        connect: Callable[[str, str], Any] = open_db,
    ) -> None:
        super().__init__(path, sync, connect, SpoolHealth(path, recorder))
        self._max_bytes = max_bytes
        self.max_age = max_age
        self._resolve = resolve
        self.on_claim = on_claim
        self._fork_held = False
        with self._lock:
            self._usable()
        self._start_writer()
        _open.add(self)
        ref = weakref.ref(self)
        os.register_at_fork(
            before=lambda: _hook(ref, "_before_fork"),
            after_in_parent=lambda: _hook(ref, "_after_fork_parent"),
        )
        forks.in_child(lambda: _hook(ref, "after_fork"))

    # -- writes ---------------------------------------------------------------------------------

    def add(self, op: Operation, in_memory: bool = True) -> bool:
        """Persist ``op``. False: not durable (spool full, failing or closed); the caller keeps
        it in memory. ``in_memory=False`` spills it: on disk until :meth:`reload`."""
        self._check_pid()
        if self._closed or self.failing():
            return False
        if self._bytes + op.size > self._max_bytes or len(self._pending) >= MAX_PENDING:
            return False  # full, or the writer cannot keep up (e.g. another process holds the lock)
        self._bytes += op.size
        if self._sync == "always":
            return self._add_now(op, in_memory)
        self._pending.append(("add", op, in_memory))
        self._start_writer()
        return True

    def ack(self, ops: list[Operation]) -> bool:
        """Delete the rows of operations that were delivered or finally rejected."""
        return self._queue("ack", ops)

    def park(self, ops: list[Operation]) -> bool:
        """Operations left undelivered for now: their rows become spilled (``reload`` returns them)."""
        return self._queue("park", ops)

    def _queue(self, kind: str, ops: list[Operation]) -> bool:
        self._check_pid()
        if not ops or self._closed:
            return not ops
        self._bytes = max(0, self._bytes - sum(op.size for op in ops)) if kind == "ack" else self._bytes
        self._pending.append((kind, [op.op_id for op in ops], None))
        self._start_writer()
        if self._sync == "always":
            self._wake.set()
        return True

    # -- reads ----------------------------------------------------------------------------------

    def recover(self, limit: int) -> tuple[list[Operation], int]:
        """Claim the rows of dead owners (and ownerless rows), drop expired ones, and return up to
        ``limit`` of this handle's spilled rows (now in memory) and how many stay on disk."""
        self._check_pid()
        ops, rest = self._claim_and_load(limit, self.max_age, orphans=True)
        return self._resolved(ops), rest

    def reload(self, limit: int) -> list[Operation]:
        """Move up to ``limit`` spilled rows back to memory, oldest first (then those the disk
        could not take while it failed)."""
        self._check_pid()
        self.drain()
        ops, _ = self._claim_and_load(limit, self.max_age, orphans=False, claim=False)
        while len(ops) < limit and self._held:
            ops.append(self._held.popleft())
        return self._resolved(ops)

    def expire(self, max_age: float | None = None) -> int:
        """Drop spilled rows older than ``max_age`` (default: the spool's); returns how many.
        They are also reported by :meth:`take_losses` as ``expired`` (count them once)."""
        self._check_pid()
        return self._expire(self.max_age if max_age is None else max_age)

    def persist(self, ops: list[Operation]) -> list[Operation]:
        """At shutdown: make sure the operations still in memory have rows. Returns the ones
        that are not durable (the spool is failing): the caller counts them as ``spool_error``."""
        self._check_pid()
        if self._closed:
            return list(ops)
        return self._persist(ops)

    def failing(self) -> bool:
        """True while a fault keeps new operations out of the spool (memory only)."""
        return self.health_state not in (None, "locked")

    def _resolved(self, ops: list[Operation]) -> list[Operation]:
        resolve = self._resolve
        if resolve is None:
            return ops
        cache: dict[Endpoint, Endpoint] = {}
        for op in ops:
            endpoint = cache.get(op.endpoint)
            if endpoint is None:
                try:
                    endpoint = resolve(op.endpoint)
                except Exception:  # a broken resolver keeps the stored endpoint
                    endpoint = op.endpoint
                cache[op.endpoint] = endpoint
            op.endpoint = endpoint
        return ops

    def count(self) -> int:
        """Operations this handle holds in the spool (on disk, queued for it, or kept in memory)."""
        queued = 0
        for kind, payload, _ in list(self._pending):
            queued += 1 if kind == "add" else -len(payload) if kind == "ack" else 0
        return max(0, self._db_rows + queued) + len(self._held)

    def health(self) -> dict[str, Any]:
        """``{"state": "ok" | kind, "errors": {kind: episodes}, "lost": n, "path", "owner_lock"}``."""
        out = self._health.report()
        out["path"] = self.path
        out["owner_lock"] = "flock" if self._owner_lock is not None and self._owner_lock.held else "lease"
        out["held_in_memory"] = len(self._held)
        return out

    def take_losses(self) -> dict[str, int]:
        """Operations the spool dropped since the last call, by reason (``expired``, ``spool_error``)."""
        return self._health.take_losses()

    # -- fork -----------------------------------------------------------------------------------

    def _before_fork(self) -> None:
        # Invariant: no SQLite call of this handle is in flight while fork() copies the process.
        self._fork_held = self._lock.acquire(timeout=FORK_WAIT_SECONDS)

    def _after_fork_parent(self) -> None:
        if self._fork_held:
            self._fork_held = False
            self._lock.release()

    def after_fork(self) -> None:
        """In the child: fresh lock and state; its own connection opens on first use (no SQLite
        here). The parent's rows, connection and lock stay the parent's."""
        if self._pid == os.getpid():
            return
        inherited_busy = False
        if self._conn is not None and not self._fork_held:
            # Forked without our before-fork hook (uWSGI): the copied lock tells whether a parent
            # thread was inside SQLite (every SQLite call holds it).
            inherited_busy = not self._lock.acquire(blocking=False)
        self._fork_held = False
        self._reset_for_child()
        if inherited_busy:
            # A parent thread was inside SQLite at fork: its locks are in our copy of the library.
            self._health.fault(
                "locked", None, "forked during a spool write; this child keeps operations in memory"
            )
            self._closed = True

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self, timeout: float = 1.0) -> bool:
        """Commit what is queued and release ownership: the next process claims the rest at once."""
        if self._pid != os.getpid():
            return True
        if self._closed:
            return True
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))
        return self._close_now()


def _hook(ref: weakref.ReferenceType[Spool], name: str) -> None:
    spool = ref()
    if spool is not None:
        with contextlib.suppress(Exception):  # inside fork(): never raise
            getattr(spool, name)()
