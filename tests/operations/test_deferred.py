"""The caller's snapshot of an event and its completion on the sender (operations.deferred)."""

from __future__ import annotations

import datetime as dt
import math
import os
import signal
import threading
import uuid
import warnings
from typing import Any

import orjson
import pytest

from cioguard.operations.build import build, track_endpoint
from cioguard.operations.calls import bind
from cioguard.operations.deferred import ID_SLOT, Lanes, snapshot_event
from cioguard.operations.errors import SerializationError
from cioguard.operations.model import Endpoint, Operation
from cioguard.operations.ulid import decode_ms

REALISTIC: dict[str, Any] = {
    "order": {
        "id": "A-1001",
        "items": [
            {"sku": "sku-1", "qty": 2, "price": 9.99, "discount": None},
            {"sku": "sku-2", "qty": 1, "price": 19.5, "discount": None},
        ],
        "coupon": None,
        "shipping": {"city": "Zürich", "country": "CH", "express": False},
    },
    "placed_at": "2024-05-01T10:20:30Z",
    "note": None,
    "emoji": "🎉",
    "when": dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=dt.timezone.utc),
}


@pytest.fixture
def endpoint() -> Endpoint:
    return track_endpoint("site", "key", "https://track.customer.io")


def _deferred(endpoint: Endpoint, lanes: Lanes, method: str, *args: Any, **kwargs: Any) -> Operation:
    [op] = build(bind(method, args, kwargs), endpoint, now=1_700_000_000.0, mono=5.0, lanes=lanes)
    return op


@pytest.mark.parametrize("method", ["track", "pageview", "backfill"])
def test_a_snapshot_completes_to_the_bytes_of_the_exact_path(endpoint: Endpoint, method: str) -> None:
    lanes = Lanes()
    args: tuple[Any, ...] = ("u1", "order_completed", REALISTIC) if method == "track" else ("u1", "page")
    if method == "backfill":
        args = ("u1", "order_completed", 1_700_000_000)
    kwargs: dict[str, Any] = {} if method == "track" else dict(REALISTIC)
    op = _deferred(endpoint, lanes, method, *args, **kwargs)
    assert op._pending is lanes, "ordinary data (None, nesting, dates, unicode) takes the fast path"
    [exact] = build(bind(method, args, kwargs), endpoint, now=1_700_000_000.0, mono=5.0)
    assert op.size == exact.size
    assert op.body[ID_SLOT] != exact.body[ID_SLOT]  # two ULIDs
    ulid = op.body[ID_SLOT].decode()
    assert op.body.replace(ulid.encode(), exact.body[ID_SLOT]) == exact.body
    assert op.event_id == op.op_id == ulid
    assert decode_ms(ulid) == 1_700_000_000_000
    assert (op.route, op.http_method, op.path, op.shard_key) == ("v2", "POST", "/api/v2/batch", "id:u1")


@pytest.mark.parametrize("customer_id", ["u1", 42, "cio_abc", "Ada@Example.com", 'q"uote\\ü'])
@pytest.mark.parametrize(
    ("method", "name", "extra"),
    [
        ("track", "order_completed", {}),
        ("track", 'na"me ☕\n', {"timestamp": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)}),
        ("track", "clicked", {"timestamp": 1_700_000_000, "id": "evt-1"}),
        ("pageview", "https://example.com/ü", {}),
        ("backfill", "imported", {}),
    ],
)
def test_the_joined_entry_is_the_exact_paths_bytes(
    endpoint: Endpoint, customer_id: Any, method: str, name: str, extra: dict[str, Any]
) -> None:
    """entry_json joins the sender's entry from the caller's data JSON: byte for byte build()'s."""
    if method == "track":
        args: tuple[Any, ...] = (customer_id, name, REALISTIC)
        kwargs = dict(extra)
    elif method == "pageview":
        args, kwargs = (customer_id, name), dict(REALISTIC)
    else:
        args, kwargs = (customer_id, name, 1_700_000_000), dict(REALISTIC)
    op = _deferred(endpoint, Lanes(), method, *args, **kwargs)
    assert op._pending is not None, "the snapshot path took it"
    [exact] = build(bind(method, args, kwargs), endpoint, now=1_700_000_000.0, mono=5.0)
    if "id" in extra:
        assert op.body == exact.body
    else:
        assert (
            op.body[: ID_SLOT.start] + op.body[ID_SLOT.stop :]
            == exact.body[: ID_SLOT.start] + exact.body[ID_SLOT.stop :]
        )


def test_an_entry_near_the_v2_limit_is_measured_by_the_exact_path(endpoint: Endpoint) -> None:
    from cioguard.operations.deferred import snapshot_data
    from cioguard.operations.routes import V2_ENTRY_LIMIT

    small = {"note": "x" * 100}
    near = {"note": "x" * (V2_ENTRY_LIMIT - 100)}
    assert snapshot_data("track", "u1", "clicked", small, None, None, False) is not None
    assert snapshot_data("track", "u1", "clicked", near, None, None, False) is None
    assert snapshot_data("track", "u1", 7, small, None, None, False) is None  # a name that is no string


def test_the_intake_step_gives_what_materialize_and_resolve_give(endpoint: Endpoint) -> None:
    """take_in (the sender's intake) == materialize + Lanes.resolve: lane, email → id, bytes."""
    from cioguard.operations.deferred import materialize, snapshot_data, take_in

    lanes = Lanes()
    assert _deferred(endpoint, lanes, "identify", "42", email="ada@example.com").shard_key == "id:42"
    keys = []
    for customer_id, event_id in (("Ada@Example.com", None), ("u1", "evt-1"), ("cio_x", None)):
        snapshot = snapshot_data("track", customer_id, "clicked", REALISTIC, None, event_id, False)
        assert snapshot is not None
        data_json, value, stamp = snapshot
        item = (
            endpoint,
            "track",
            data_json,
            value,
            event_id,
            1_700_000_000.0,
            None,
            3,
            lanes,
            "clicked",
            stamp,
        )
        taken, made = take_in(item), materialize(item)
        assert taken._pending is None
        assert taken.shard_key == made.shard_key
        assert (taken.event_id == taken.op_id) is (event_id is None)
        assert taken.body.replace(taken.body[ID_SLOT], made.body[ID_SLOT], 1) == made.body
        assert decode_ms(taken.op_id) == 1_700_000_000_000
        keys.append(taken.shard_key)
    assert keys == ["id:42", "id:u1", "cio_id:x"]  # the email joined the lane identify tied it to


def test_reading_what_the_caller_knows_completes_nothing(endpoint: Endpoint) -> None:
    op = _deferred(endpoint, Lanes(), "track", "u1", "clicked", {"a": 1})
    assert (op.size, op.route, op.method, op.endpoint, op.enqueued_at, op.created_at) == (
        len(op._body),
        "v2",
        "track",
        endpoint,
        5.0,
        1_700_000_000.0,
    )
    assert op._pending is not None
    assert op._body[ID_SLOT] == b"0" * 26
    op.caller_seconds = 0.000_012_5
    assert op.caller_seconds == pytest.approx(0.000_012)


def test_the_callers_dict_may_change_after_the_call(endpoint: Endpoint) -> None:
    data: dict[str, Any] = {"items": [1, 2], "plan": "pro"}
    op = _deferred(endpoint, Lanes(), "track", "u1", "clicked", data)
    data["plan"] = "free"
    data["items"].append(3)
    assert orjson.loads(op.body)["attributes"] == {"items": [1, 2], "plan": "pro"}


def test_a_callers_id_is_the_event_id_and_the_op_id_is_new(endpoint: Endpoint) -> None:
    op = _deferred(endpoint, Lanes(), "track", "u1", "clicked", {}, id="evt-1")
    assert op.event_id == "evt-1"
    assert op.op_id != "evt-1"
    assert len(op.op_id) == 26
    assert orjson.loads(op.body)["id"] == "evt-1"


@pytest.mark.parametrize(
    ("data", "where"),
    [({"x": [1, {"y": math.inf}]}, 'data["x"][1]["y"]'), ({"u": uuid.uuid4()}, 'data["u"]')],
)
def test_values_the_sdk_cannot_send_still_fail_at_the_call(
    endpoint: Endpoint, data: dict[str, Any], where: str
) -> None:
    call = bind("track", ("u1", "clicked", {**data, "n": None}), {})
    assert snapshot_event(call, endpoint, None, 1.0, 1.0, Lanes()) is None  # the exact path decides
    with pytest.raises(SerializationError, match=where.replace("[", r"\[")):
        build(call, endpoint, lanes=Lanes())


def test_an_email_addressed_operation_joins_the_lane_identify_tied_it_to(endpoint: Endpoint) -> None:
    lanes = Lanes()
    before = _deferred(endpoint, lanes, "track", "Ada@Example.com", "clicked", {})
    identify = _deferred(endpoint, lanes, "identify", "42", email="ada@example.com")
    after = _deferred(endpoint, lanes, "track", "ADA@example.com", "clicked", {})
    # Completed in queue order, as the sender reads them: only what follows the identify moves.
    assert [op.shard_key for op in (before, identify, after)] == ["email:Ada@Example.com", "id:42", "id:42"]


def test_one_persons_operations_share_one_shard_key_string(endpoint: Endpoint) -> None:
    lanes = Lanes()
    first, second = (_deferred(endpoint, lanes, "track", 7, "clicked", {}) for _ in range(2))
    assert first.shard_key == "id:7"
    assert first.shard_key is second.shard_key


def test_concurrent_readers_see_one_ulid(endpoint: Endpoint) -> None:
    ops = [_deferred(endpoint, Lanes(), "track", "u1", "clicked", {}) for _ in range(200)]
    seen: list[list[str]] = [[], []]

    def read(out: list[str]) -> None:
        out.extend(op.event_id or "" for op in ops)

    threads = [threading.Thread(target=read, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen[0] == seen[1] == [op.op_id for op in ops]
    assert len(set(seen[0])) == 200


def test_a_snapshot_keeps_no_monotonic_float_and_derives_it(endpoint: Endpoint) -> None:
    import time

    call = bind("track", ("u1", "clicked", {}), {})
    now = time.time() - 2.0  # accepted two seconds ago
    op = snapshot_event(call, endpoint, None, now, None, Lanes())
    assert op is not None
    assert op._enqueued_at is None
    assert time.monotonic() - op.enqueued_at == pytest.approx(2.0, abs=0.5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_an_operation_is_completed_leaves_the_child_a_free_lock(endpoint: Endpoint) -> None:
    from cioguard.operations import model

    op = _deferred(endpoint, Lanes(), "track", "u1", "clicked", {})
    with model._lock, warnings.catch_warnings():  # as if a sender thread were completing one now
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() in a threaded process
        pid = os.fork()
        if pid == 0:  # the child: completing must not wait for the parent's lock holder
            signal.alarm(5)  # a deadlock ends the child by SIGALRM instead of hanging the test
            ok = op.shard_key == "id:u1" and len(op.op_id) == 26
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_person_calls_op_id_is_made_on_the_sender(endpoint: Endpoint) -> None:
    from cioguard.operations.model import LATER

    call = bind("identify", ("u1",), {"plan": "pro"})
    [queued] = build(call, endpoint, now=1_700_000_000.0, lanes=Lanes())
    assert queued._op_id is LATER  # nothing made on the caller
    assert decode_ms(queued.op_id) == 1_700_000_000_000
    assert queued.op_id == queued.op_id  # made once
    [plain] = build(call, endpoint, now=1_700_000_000.0)  # no sender to complete it: made at once
    assert isinstance(plain._op_id, str)
    assert len(plain._op_id) == 26


def test_the_email_map_forgets_whoever_was_identified_longest_ago(monkeypatch: pytest.MonkeyPatch) -> None:
    import cioguard.operations.deferred as deferred

    monkeypatch.setattr(deferred, "_EMAILS_MAX", 3)
    lanes = Lanes()
    for who in ("a", "b", "c"):
        lanes.learn(f"{who}@example.com", f"id:{who}")
    lanes.learn("a@example.com", "id:a")  # identified again: the youngest now
    lanes.learn("d@example.com", "id:d")
    assert lanes.lane("a@example.com") == "id:a"
    assert lanes.lane("b@example.com") == "email:b@example.com"  # forgotten (bounded)
    assert len(lanes.emails) == 3
