"""The spool's contract on a real SQLite file: only success shrinks it, expiry after ``max_age``,
ownership decided by the owner's lock (not its pid), recovered rows resolved to the current
endpoint, and the child of a fork using its own connection."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import warnings
from pathlib import Path

from spool_support import ENDPOINT, make_op, start_holder, stop_holder

from cioguard.delivery.spool import Spool, endpoint_resolver
from cioguard.operations.model import Endpoint


def rows(path: str) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT op_id, owner, mem FROM ops ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_rows_leave_only_by_ack_or_expiry(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    spool = Spool(path, "group")
    ops = [make_op(i) for i in range(10)]
    for op in ops[:6]:
        assert spool.add(op)
    for op in ops[6:]:
        assert spool.add(op, in_memory=False)
    assert spool.ack(ops[:2])
    assert spool.park(ops[2:4])  # a transient failure: back to disk, not deleted
    assert spool.drain()
    assert spool.count() == 8
    assert [op.op_id for op in spool.reload(100)] == [op.op_id for op in ops[2:4] + ops[6:]]
    assert spool.close()
    assert len(rows(path)) == 8  # closing (shutdown/exit) deletes nothing

    again = Spool(path, "always")
    recovered, rest = again.recover(5)
    assert (len(recovered), rest) == (5, 3)
    assert again.count() == 8
    assert again.ack(recovered)
    assert again.drain()
    assert again.count() == 3
    assert again.take_losses() == {}
    again.close()


def test_rows_older_than_max_age_expire_and_are_counted(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    spool = Spool(path, "always", max_age=3600)
    old = time.time() - 7200
    for i in range(4):
        spool.add(make_op(i, created_at=old), in_memory=False)
    for i in range(4, 7):
        spool.add(make_op(i), in_memory=False)
    assert spool.expire() == 4
    assert spool.take_losses() == {"expired": 4}
    assert spool.take_losses() == {}
    assert [op.op_id for op in spool.reload(10)] == [f"p-{i:06d}" for i in range(4, 7)]
    spool.close()


def test_recovered_rows_go_to_the_configured_endpoint_with_their_credentials(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    first = Spool(path, "always")
    first.add(make_op(1), in_memory=False)
    first.close()
    resolve = endpoint_resolver("http://127.0.0.1:4242/", None)
    ops, _ = Spool(path, "always", resolve=resolve).recover(10)
    assert [op.endpoint for op in ops] == [
        Endpoint("track", "http://127.0.0.1:4242", ENDPOINT.auth_header, "track")
    ]


def test_a_live_owner_keeps_its_rows_and_a_killed_one_loses_them_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    holder, owner = start_holder(path, 50)
    try:
        mine = Spool(path, "always")
        assert mine.recover(1000) == ([], 0)
        # Its pid looks dead (another PID namespace would show exactly this): the lock decides.
        conn = sqlite3.connect(path)
        conn.execute("UPDATE owners SET pid = 999999999, heartbeat = 1 WHERE owner = ?", (owner,))
        conn.commit()
        conn.close()
        assert mine.recover(1000) == ([], 0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        began = time.monotonic()
        ops, rest = mine.recover(1000)
        assert len(ops) == 50
        assert rest == 0
        assert time.monotonic() - began < 1.0  # no lease to wait for
        assert {o for _, o, _ in rows(path)} == {mine._owner}
        mine.close()
    finally:
        stop_holder(holder)


def test_a_running_process_claims_rows_of_an_owner_that_dies_later(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    claimed: list[int] = []
    mine = Spool(path, "group", on_claim=claimed.append)
    holder, _ = start_holder(path, 20)
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    stop_holder(holder)
    mine._maintain()  # what the writer thread does every HEARTBEAT_SECONDS
    assert claimed == [20]
    assert len(mine.reload(100)) == 20
    mine.close()


def test_an_owner_without_lock_support_falls_back_to_the_lease(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    spool = Spool(path, "always")
    conn = sqlite3.connect(path)
    now = time.time()
    conn.executemany(
        "INSERT INTO owners (owner, pid, heartbeat, locked, host) VALUES (?, ?, ?, 0, 'elsewhere')",
        [("fresh", 1, now), ("stale", 1, now - 3600)],
    )
    for owner in ("fresh", "stale"):
        conn.execute(
            "INSERT INTO ops (op_id, owner, mem, api, base_url, auth, label, method, route, http_method, "
            "path, body, shard_key, event_id, created_at) VALUES (?, ?, 1, 'track', 'http://x', 'a', "
            "'track', 'track', 'v2', 'POST', '/api/v2/batch', x'7b7d', 'k', NULL, ?)",
            (f"{owner}-op", owner, now),
        )
    conn.commit()
    conn.close()
    ops, _ = spool.recover(10)
    assert [op.op_id for op in ops] == ["stale-op"]
    spool.close()


def test_forked_child_opens_its_own_connection_and_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    parent = Spool(path, "group")
    for i in range(100):
        parent.add(make_op(i, "parent"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 3
        try:
            for i in range(10):
                parent.add(make_op(i, "child"))
            ok = parent.drain() and parent.count() == 10 and parent.health()["state"] == "ok"
            code = 0 if ok and parent.close() else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.drain()
    owners = {owner for _, owner, _ in rows(path)}
    assert len(owners) == 2
    assert parent.count() == 100
    parent.close()
