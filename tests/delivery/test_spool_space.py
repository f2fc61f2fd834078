"""spool_space: the reserve beside a spool and the order deletions are written in on a full disk."""

from __future__ import annotations

import os
from pathlib import Path

from sink import make_op

from cioguard.delivery.spool_space import (
    DELETE_CHUNK,
    ROOM_BYTES,
    give_room,
    keep_room,
    room_path,
    split_for_space,
)
from cioguard.operations.model import Endpoint


def test_the_reserve_is_real_space_and_given_back(tmp_path: Path) -> None:
    spool = str(tmp_path / "cio.spool")
    assert keep_room(spool)
    stat = os.stat(room_path(spool))
    assert stat.st_size == ROOM_BYTES
    assert stat.st_blocks * 512 >= ROOM_BYTES  # allocated, not a sparse file
    assert stat.st_mode & 0o777 == 0o600
    assert keep_room(spool)  # already there: nothing to do
    assert give_room(spool)
    assert not os.path.exists(room_path(spool))
    assert not give_room(spool)


def test_no_reserve_where_the_directory_is_missing(tmp_path: Path) -> None:
    assert not keep_room(str(tmp_path / "missing" / "cio.spool"))  # never raises


def test_deletions_go_first_in_chunks_and_cancel_their_insertions() -> None:
    endpoint = Endpoint("track", "https://track.customer.io", "Basic x", "track")
    a, b, c = (make_op(endpoint) for _ in range(3))
    acked = [f"x{i}" for i in range(DELETE_CHUNK + 3)]
    commands = [
        ("add", a, True),
        ("ack", acked, None),
        ("add", b, True),
        ("park", [c.op_id], None),
        ("ack", [a.op_id], None),  # delivered within the same group commit as its insertion
        ("add", c, False),
    ]
    chunks, rest = split_for_space(commands)
    assert chunks == [acked[:DELETE_CHUNK], [*acked[DELETE_CHUNK:], a.op_id]]
    assert rest == [("add", b, True), ("park", [c.op_id], None), ("add", c, False)]  # no insertion of "a"
