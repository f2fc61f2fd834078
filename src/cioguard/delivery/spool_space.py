"""Making room in a spool whose disk is full, so delivered rows still leave the file.

In WAL mode every write, a ``DELETE`` too, appends pages to the ``-wal`` file, and a checkpoint
copies them into the file before the log can start again. When the disk is full the log cannot
grow and the checkpoint cannot grow the file: the deletions of what was just delivered fail with
the rest, those rows stay, and the next process opening the spool sends them again (an
``identify`` has no id to dedupe, so an older profile would overwrite a newer one).

So the spool stops adding rows while less than :data:`LOW_SPACE_BYTES` are free (it fails as
``disk_full``; deletions go on), and keeps :data:`ROOM_BYTES` of real disk space in
``<spool>-room`` for when other programs fill the disk anyway, given up only for deletions::

    low_space(path)                               # stop adding rows: room for the rest
    keep_room(path)                               # at open and after recovery; best effort
    give_room(path)                               # a deletion failed for space: free the reserve
    checkpoint(conn)                              # log pages into the file, log truncated
    chunks, rest = split_for_space(commands)      # deletions first, in small transactions

A deletion of a few hundred rows needs only a few pages of log, and an insertion that the
deletions cancel (delivered within the same group commit) is never written at all. A file size
limit (``RLIMIT_FSIZE``: SQLite's I/O error) is per file, so the checkpoint alone makes room there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections import deque
from typing import Any

from cioguard.delivery.spool_health import SpoolHealth
from cioguard.delivery.spool_store import fault_kind
from cioguard.operations.model import Endpoint, Operation

#: ``(kind, payload, flag)``: ``("add", op, in_memory)``, ``("ack" | "park", [op_id...], None)``.
Command = tuple[str, Any, Any]

#: Disk space held in reserve beside each spool (``<spool>-room``), released for deletions only.
ROOM_BYTES = 2 * 1024 * 1024
#: Below this much free space on the spool's filesystem no row is added: the spool fails as
#: ``disk_full`` (operations stay in memory) while deletions go on, and what is left lets the log
#: be checkpointed and delivered rows leave the file. The reserve covers other programs filling it.
LOW_SPACE_BYTES = 8 * 1024 * 1024
#: With this much free, the writer looks again only after ROOMY_SECONDS (no per-commit statvfs
#: and byte count on an ordinary disk).
ROOMY_BYTES = 1 << 30
ROOMY_SECONDS = 0.1
#: Rows deleted per transaction while the disk is full (a few pages of log each).
DELETE_CHUNK = 256
#: While the disk stays full, room is made at most this often (the writer drains every 5 ms);
#: a closing spool makes room at once.
ROOM_EVERY_SECONDS = 0.25
#: Fault kinds that mean "no room": a full disk, or the file size limit (SQLite's I/O error).
NO_ROOM = frozenset({"disk_full", "other"})


def room_path(path: str) -> str:
    return path + "-room"


def keep_room(path: str) -> bool:
    """Make sure ``<path>-room`` holds :data:`ROOM_BYTES` of allocated space; False if the disk
    cannot give it now (retried at the next recovery). Never raises."""
    room = room_path(path)
    with contextlib.suppress(OSError):  # no reserve yet
        if os.path.getsize(room) >= ROOM_BYTES:
            return True
    try:
        fd = os.open(room, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        allocate = getattr(os, "posix_fallocate", None)  # not on macOS
        try:
            if allocate is None:
                raise OSError(errno.EOPNOTSUPP, "no posix_fallocate")
            allocate(fd, 0, ROOM_BYTES)  # real blocks: a sparse file would reserve nothing
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.pwrite(fd, b"\0" * ROOM_BYTES, 0)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(room)  # a part of it would only take space from the spool
        return False
    finally:
        os.close(fd)


def free_bytes(path: str) -> int | None:
    """Bytes free for this user on the filesystem holding ``path`` (None: unknown). Never raises."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def low_space(path: str, writing: int = 0, margin: int = 0) -> bool:
    """True when the filesystem holding ``path`` would have less than :data:`LOW_SPACE_BYTES`
    (plus ``margin``) free for this user after ``writing`` more bytes (unknown: False)."""
    free = free_bytes(path)
    return free is not None and free - writing < LOW_SPACE_BYTES + margin


def give_room(path: str) -> bool:
    """Free the reserve (a deletion failed for space); True when there was one. Never raises."""
    try:
        os.unlink(room_path(path))
    except OSError:
        return False
    return True


def checkpoint(conn: Any) -> None:
    """Copy the log into the file and truncate it; best effort (a full disk may refuse it)."""
    with contextlib.suppress(Exception):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def split_for_space(commands: list[Command]) -> tuple[list[list[str]], list[Command]]:
    """The ids to delete in chunks of :data:`DELETE_CHUNK`, and the other commands in their order
    without the insertions those deletions cancel.

    Invariant: applying the chunks first and then the rest leaves the file as applying
    ``commands`` in order would (an ``ack`` always follows its ``add``; a ``park`` of a row
    deleted later changes nothing that remains).
    """
    acked: list[str] = []
    for kind, payload, _ in commands:
        if kind == "ack":
            acked.extend(payload)
    gone = set(acked)
    rest = [c for c in commands if c[0] == "park" or (c[0] == "add" and c[1].op_id not in gone)]
    chunks = [acked[i : i + DELETE_CHUNK] for i in range(0, len(acked), DELETE_CHUNK)]
    return chunks, rest


class SpaceKeeper:
    """The writer's side of a full disk (a mixin of ``SpoolWriter``; every method with its lock held)."""

    path: str
    _closed: bool
    _pending: deque[Command]
    _room_after: float
    _roomy_until: float
    _health: SpoolHealth

    def _execute(self, conn: Any, commands: list[Command]) -> None:
        raise NotImplementedError

    def _fault(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _keep_failed(self, commands: list[Command]) -> None:
        raise NotImplementedError

    def _short_of_space(self, commands: list[Command]) -> bool:
        """Rows to add that would leave the filesystem nearly full: each transaction is measured
        (a burst must not write past the mark), counting a row's bytes three times (the log, the
        file, SQLite's pages). Once short, :data:`ROOM_BYTES` more must be free to go on (no
        flapping between ``disk_full`` and working)."""
        now = time.monotonic()
        if now < self._roomy_until:
            return False  # plenty of room a moment ago: no transaction writes that much
        free = free_bytes(self.path)
        if free is None:
            return False
        if free >= ROOMY_BYTES:
            self._roomy_until = now + ROOMY_SECONDS
            return False
        writing: int = 3 * sum(c[1].size for c in commands if c[0] == "add")
        margin = ROOM_BYTES if self._health.state == "disk_full" else 0
        return writing > 0 and free - writing < LOW_SPACE_BYTES + margin

    def _drain_without_adds(self, conn: Any, commands: list[Command]) -> bool:
        """Nearly full (lock held): deletions and parks are written, additions kept in memory."""
        chunks, rest = split_for_space(commands)
        adds = [c for c in rest if c[0] == "add"]
        others = [("ack", ids, None) for ids in chunks] + [c for c in rest if c[0] != "add"]
        failure: BaseException = OSError(errno.ENOSPC, f"less than {LOW_SPACE_BYTES >> 20} MiB free")
        if others:
            try:
                self._execute(conn, others)
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                self._pending.extendleft(reversed(others))  # deletions and parks: retried
                if fault_kind(exc) != "locked":
                    failure = exc
        self._fault(failure)
        self._keep_failed(adds)
        return False

    def _make_room(self, conn: Any, commands: list[Command]) -> tuple[list[Command], Exception | None]:
        """After a write failed for want of space (lock held): checkpoint, delete in small
        transactions, then write the rest once (see :mod:`~cioguard.delivery.spool_space`).
        Returns what is still unwritten and the last error (None: all written)."""
        self._room_after = float("-inf") if self._closed else time.monotonic() + ROOM_EVERY_SECONDS
        chunks, rest = split_for_space(commands)
        for done, ids in enumerate(chunks):
            checkpoint(conn)
            try:
                self._execute(conn, [("ack", ids, None)])
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                return [("ack", left, None) for left in chunks[done:]] + rest, exc
        if rest:
            checkpoint(conn)
            try:
                self._execute(conn, rest)
            except Exception as exc:
                if conn.in_transaction:
                    conn.rollback()
                return rest, exc
        return [], None


def probe_op(owner: str) -> Operation:
    """A 64 KB row written and deleted to learn whether the disk takes data again."""
    endpoint = Endpoint("track", "probe", "", "probe")
    return Operation(
        endpoint=endpoint,
        method="probe",
        route="single",
        http_method="POST",
        path="/",
        body=b"\0" * 65536,
        shard_key="probe",
        op_id=f"probe:{owner}",
    )
