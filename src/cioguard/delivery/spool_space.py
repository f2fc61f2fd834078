"""Making room in a spool whose disk is full, so delivered rows still leave the file.

In WAL mode every write, a ``DELETE`` too, appends pages to the ``-wal`` file, and a checkpoint
copies them into the file before the log can start again. When the disk is full the log cannot
grow and the checkpoint cannot grow the file: the deletions of what was just delivered fail with
the rest, those rows stay, and the next process opening the spool sends them again (an
``identify`` has no id to dedupe, so an older profile would overwrite a newer one).

So each spool keeps :data:`ROOM_BYTES` of real disk space in ``<spool>-room`` (more than the log
holds between checkpoints, see ``WAL_AUTOCHECKPOINT_PAGES``), and gives it up only for deletions::

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
from typing import Any

from cioguard.operations.model import Endpoint, Operation

#: ``(kind, payload, flag)``: ``("add", op, in_memory)``, ``("ack" | "park", [op_id...], None)``.
Command = tuple[str, Any, Any]

#: Disk space held in reserve beside each spool (``<spool>-room``), released for deletions only.
ROOM_BYTES = 2 * 1024 * 1024
#: The log is checkpointed past this many pages (1 MiB of 4 KiB pages, SQLite's default is 1000),
#: so what a checkpoint must add to the file stays well inside :data:`ROOM_BYTES`.
WAL_AUTOCHECKPOINT_PAGES = 256
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
    try:
        if os.path.getsize(room) >= ROOM_BYTES:
            return True
    except OSError:
        pass
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
