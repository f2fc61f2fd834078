"""Ownership of spool rows: who is alive, and claiming the rows of owners that are not.

::

    from cioguard.delivery.spool_owners import OwnerLock, register, claim_dead

    lock = OwnerLock(spool_path, token)        # held for the owner's lifetime
    register(conn, token, lock)                # inside BEGIN IMMEDIATE
    claimed = claim_dead(conn, spool_path, token)   # rows of dead owners are ours now (mem=0)

Every process handle on a spool is an *owner* (a random token). Liveness is decided, in order:

1. an owner of this very process is alive while its handle is open;
2. an owner that holds its **advisory lock** — ``flock`` on ``<spool>.owners/<token>``, taken
   before the owner row is written and held until close or death — is alive, whatever its pid
   says: this is right across PID namespaces (containers) and, where the filesystem supports
   locks (local disks, NFSv4), across hosts sharing the file. The kernel releases the lock when
   the process dies, so a restarted process claims a killed owner's rows at once;
3. otherwise (no lock file support) the **lease**: an owner whose heartbeat is older than
   :data:`LEASE_SECONDS` is dead; its pid is consulted only on the same kernel and PID namespace.

Invariant: rows are claimed only inside ``BEGIN IMMEDIATE`` (one claimer at a time), and an
owner's row exists only while its lock is held, so a live owner's rows are never taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time

#: An owner without a lock whose heartbeat is older than this is presumed dead.
LEASE_SECONDS = 15.0

_local_lock = threading.Lock()
#: Owners open in this process: token -> pid that opened it (a forked child is not its parent).
_local: dict[str, int] = {}


def host_id() -> str:
    """Kernel boot id + PID namespace: where a pid can be checked with ``kill(pid, 0)``."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


HOST = host_id()


def lock_dir(spool_path: str) -> str:
    return spool_path + ".owners"


class OwnerLock:
    """This owner's advisory lock file; ``held`` is False when locks are unavailable (lease only)."""

    def __init__(self, spool_path: str, token: str) -> None:
        self.path = os.path.join(lock_dir(spool_path), token)
        self._fd: int | None = None
        try:
            os.makedirs(lock_dir(spool_path), mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        except OSError:
            self._fd = None
        with _local_lock:
            _local[token] = os.getpid()
        self._token = token

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give up ownership (close): the lock file goes, so claimers see the owner dead."""
        with _local_lock:
            _local.pop(self._token, None)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def intact(self) -> bool:
        """False when our lock file was deleted or replaced (claimers would think us dead)."""
        if self._fd is None:
            return True
        try:
            mine, there = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)

    def forget_after_fork(self) -> None:
        """In a forked child: drop the inherited descriptor (the parent keeps its lock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _locked_by_someone(path: str) -> bool | None:
    """True if another handle holds the lock at ``path``, False if not (or no file), None if unknown."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing our descriptor also drops the lock we may just have taken
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(
    spool_path: str, owner: str, pid: int, heartbeat: float, locked: int, host: str, now: float
) -> bool:
    """Liveness of one ``owners`` row (see the module docstring for the order of the rules)."""
    with _local_lock:
        local_pid = _local.get(owner)
    if local_pid == os.getpid():
        return True
    if heartbeat <= 0:
        return False  # released by close()
    if locked:
        held = _locked_by_someone(os.path.join(lock_dir(spool_path), owner))
        if held is not None:
            return held
    if host and host == HOST and pid > 0 and not pid_alive(pid):
        return False
    return heartbeat >= now - LEASE_SECONDS


def register(conn: sqlite3.Connection, token: str, lock: OwnerLock, now: float | None = None) -> None:
    """Write (or refresh) this owner's row; call after the lock is taken."""
    conn.execute(
        "INSERT OR REPLACE INTO owners (owner, pid, heartbeat, locked, host) VALUES (?, ?, ?, ?, ?)",
        (token, os.getpid(), time.time() if now is None else now, 1 if lock.held else 0, HOST),
    )


def dead_owners(conn: sqlite3.Connection, spool_path: str, me: str, now: float) -> list[str]:
    rows = conn.execute("SELECT owner, pid, heartbeat, locked, host FROM owners").fetchall()
    return [
        owner
        for owner, pid, beat, locked, host in rows
        if owner != me
        and not owner_alive(spool_path, owner, int(pid), float(beat), int(locked), str(host), now)
    ]


def claim_dead(conn: sqlite3.Connection, spool_path: str, me: str, orphans: bool = False) -> int:
    """Move the rows of dead owners (and, with ``orphans``, of owners without a row) to ``me``
    as spilled rows (``mem = 0``). Call inside ``BEGIN IMMEDIATE``; returns the rows claimed."""
    dead = dead_owners(conn, spool_path, me, time.time())
    if orphans:
        known = {o for (o,) in conn.execute("SELECT owner FROM owners").fetchall()}
        dead += [
            o
            for (o,) in conn.execute("SELECT DISTINCT owner FROM ops").fetchall()
            if o not in known and o != me
        ]
    claimed = 0
    for owner in dead:
        claimed += conn.execute("UPDATE ops SET owner = ?, mem = 0 WHERE owner = ?", (me, owner)).rowcount
        conn.execute("DELETE FROM owners WHERE owner = ?", (owner,))
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(lock_dir(spool_path), owner))
    return claimed


def describe(conn: sqlite3.Connection, spool_path: str) -> dict[str, str]:
    """``owner -> "live" | "dead"`` for every owner row (for ``cioguard replay --inspect``)."""
    now = time.time()
    rows = conn.execute("SELECT owner, pid, heartbeat, locked, host FROM owners").fetchall()
    return {
        owner: "live"
        if owner_alive(spool_path, owner, int(pid), float(beat), int(locked), str(host), now)
        else "dead"
        for owner, pid, beat, locked, host in rows
    }
