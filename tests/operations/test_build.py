"""``build``: the v1 → v2 mapping per method, routes, sizes, ids, endpoints."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from customerio import CustomerIOException
from requests.auth import _basic_auth_str

from cioguard.operations.build import (
    EVENT_DATA_LIMIT,
    REQUEST_LIMIT,
    V2_ENTRY_LIMIT,
    app_endpoint,
    build,
    origin,
    track_endpoint,
)
from cioguard.operations.calls import bind
from cioguard.operations.errors import InvalidCall, OperationTooLarge, SerializationError
from cioguard.operations.mapping import person_identifier
from cioguard.operations.model import Endpoint, Operation
from cioguard.operations.ulid import decode_ms

from .conftest import RecordingTrack

NOW = 1_714_550_000.25
EID = "01HZX0000000000000000000AA"
CET = timezone(timedelta(hours=2))


def one(method: str, endpoint: Endpoint, *args: Any, **kwargs: Any) -> Operation:
    [operation] = build(bind(method, args, kwargs), endpoint, now=NOW, mono=5.0)
    return operation


def entry(operation: Operation) -> Any:
    assert operation.route == "v2"
    assert (operation.http_method, operation.path) == ("POST", "/api/v2/batch")
    return orjson.loads(operation.body)


# -- identifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("u1", ("id", "u1")),
        (42, ("id", "42")),
        ("u1@example.com", ("email", "u1@example.com")),
        ("cio_03000001", ("cio_id", "03000001")),  # v2 cio_id values carry no prefix
        ("+14155552671", ("id", "+14155552671")),  # v1 treats a phone number as an id
        ("CIO_x", ("id", "CIO_x")),
    ],
)
def test_person_identifier_follows_v1_shapes(value: Any, expected: tuple[str, str]) -> None:
    assert person_identifier(value) == expected


# -- events ----------------------------------------------------------------------------------------


def test_track_maps_to_a_v2_event(endpoint: Endpoint) -> None:
    at = datetime(2024, 5, 1, 10, 0, tzinfo=CET)
    operation = one("track", endpoint, "u1", "purchase", {"plan": "pro", "at": at}, timestamp=at)
    body = entry(operation)
    assert body == {
        "type": "person",
        "action": "event",
        "identifiers": {"id": "u1"},
        "name": "purchase",
        "id": operation.event_id,
        "timestamp": 1714550400,
        "attributes": {"plan": "pro", "at": 1714550400},
    }
    assert operation.op_id == operation.event_id
    assert decode_ms(operation.op_id) == int(NOW * 1000)
    assert (operation.method, operation.shard_key, operation.endpoint) == ("track", "id:u1", endpoint)
    assert (operation.created_at, operation.enqueued_at, operation.size) == (NOW, 5.0, len(operation.body))


def test_track_keeps_the_callers_id_and_sdk_timestamp_rules(endpoint: Endpoint) -> None:
    operation = one("track", endpoint, "a@b.co", "ev", id=EID, timestamp="garbage")
    body = entry(operation)
    assert body["id"] == EID
    assert "timestamp" not in body  # unparseable: dropped silently, like the SDK
    assert body["identifiers"] == {"email": "a@b.co"}
    assert operation.event_id == EID
    assert operation.op_id != EID  # a reused caller id must not collide in the spool
    assert entry(one("track", endpoint, "u1", "ev", timestamp=1700000000123))["timestamp"] == 1700000000123
    assert "timestamp" not in entry(one("track", endpoint, "u1", "ev", timestamp="17.9"))  # int() fails
    assert entry(one("track", endpoint, "u1", "ev", timestamp=17.9))["timestamp"] == 17


def test_pageview_and_backfill(endpoint: Endpoint) -> None:
    page = one("pageview", endpoint, "cio_a1", "/pricing", referrer="https://x.y")
    assert entry(page) == {
        "type": "person",
        "action": "page",
        "identifiers": {"cio_id": "a1"},
        "name": "/pricing",
        "id": page.event_id,
        "attributes": {"referrer": "https://x.y"},
    }
    back = one("backfill", endpoint, 7, "old", datetime(2020, 1, 1), k=1)
    assert entry(back) == {
        "type": "person",
        "action": "event",
        "identifiers": {"id": "7"},
        "name": "old",
        "id": back.event_id,
        "timestamp": 1577836800,
        "attributes": {"k": 1},
    }


def test_track_anonymous_goes_to_v1_events(endpoint: Endpoint) -> None:
    operation = one("track_anonymous", endpoint, "anon-1", "viewed", {"a": 1}, timestamp=1700000000)
    assert (operation.route, operation.http_method, operation.path) == ("single", "POST", "/api/v1/events")
    assert orjson.loads(operation.body) == {
        "name": "viewed",
        "data": {"a": 1},
        "id": operation.event_id,
        "timestamp": 1700000000,
        "anonymous_id": "anon-1",
    }
    assert operation.shard_key == "anonymous_id:anon-1"
    invite = one("track_anonymous", endpoint, "", "invite", {"recipient": "x@y.z"})
    assert "anonymous_id" not in orjson.loads(invite.body)
    assert invite.shard_key == ""


# -- people ------------------------------------------------------------------------------------------


def test_identify(endpoint: Endpoint) -> None:
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    operation = one("identify", endpoint, "u1", email="u1@example.com", created_at=created, plan="pro")
    assert entry(operation) == {
        "type": "person",
        "action": "identify",
        "identifiers": {"id": "u1"},
        "attributes": {"email": "u1@example.com", "created_at": 1704067200, "plan": "pro"},
    }
    assert operation.event_id is None
    assert operation.op_id
    assert operation.shard_key == "id:u1"


def test_identify_timestamp_becomes_the_entry_timestamp(endpoint: Endpoint) -> None:
    body = entry(one("identify", endpoint, "u1", _timestamp=1700000000, a=1))
    assert body["timestamp"] == 1700000000
    assert body["attributes"] == {"a": 1}
    body = entry(one("identify", endpoint, "u1", _timestamp=datetime(2024, 1, 1)))
    assert (body["timestamp"], body["attributes"]) == (1704067200, {})


@pytest.mark.parametrize(
    "attributes",
    [
        {"_timestamp": "1700000000"},
        {"_timestamp": True},
        {
            "cio_relationships": {
                "action": "add_relationships",
                "relationships": [{"identifiers": {"object_id": "1"}}],
            }
        },
    ],
)
def test_identify_without_an_exact_v2_form_is_sent_as_v1(
    endpoint: Endpoint, sdk: RecordingTrack, attributes: dict[str, Any]
) -> None:
    operation = one("identify", endpoint, "a+b@x.com", **attributes)
    sdk.identify("a+b@x.com", **attributes)
    [(method, path, body)] = sdk.sent
    assert (operation.route, operation.http_method, operation.path) == ("single", method, path)
    assert path == "/api/v1/customers/a%2Bb%40x.com"
    assert orjson.loads(operation.body) == body
    assert operation.shard_key == "email:a+b@x.com"


@pytest.mark.parametrize("action", ["delete", "suppress", "unsuppress"])
def test_simple_person_actions(endpoint: Endpoint, action: str) -> None:
    assert entry(one(action, endpoint, 42)) == {
        "type": "person",
        "action": action,
        "identifiers": {"id": "42"},
    }


def test_devices(endpoint: Endpoint) -> None:
    plain = one("add_device", endpoint, "u1", "tok-1", "ios")
    assert entry(plain) == {
        "type": "person",
        "action": "add_device",
        "identifiers": {"id": "u1"},
        "device": {"token": "tok-1", "platform": "ios"},
    }
    extras = one(
        "add_device",
        endpoint,
        "u1",
        123,
        "android",
        last_used=datetime(2024, 1, 1),
        attributes={"v": "1"},
        x=1,
        id=9,
    )
    # Unknown keywords become device attributes; "id" is the SDK's own field (overwritten by the
    # device id), called "token" in v2.
    assert entry(extras)["device"] == {
        "token": "123",
        "platform": "android",
        "last_used": 1704067200,
        "attributes": {"v": "1", "x": 1},
    }
    clash = one("add_device", endpoint, "u1", "t", "ios", attributes={"os": "a", "keep": 1}, os="b")
    assert entry(clash)["device"]["attributes"] == {"os": "b", "keep": 1}
    assert entry(one("add_device", endpoint, "u1", "t", "ios", attributes={}))["device"]["attributes"] == {}
    gone = one("delete_device", endpoint, "u1", "tok/1")
    assert entry(gone) == {
        "type": "person",
        "action": "delete_device",
        "identifiers": {"id": "u1"},
        "device": {"token": "tok/1"},
    }


@pytest.mark.parametrize("extra", [{"token": "other"}, {"attributes": "not-a-dict"}, {"attributes": [1]}])
def test_add_device_without_an_exact_v2_form_is_sent_as_v1(
    endpoint: Endpoint, sdk: RecordingTrack, extra: dict[str, Any]
) -> None:
    operation = one("add_device", endpoint, "u1", "tok-1", "ios", **extra)
    sdk.add_device("u1", "tok-1", "ios", **extra)
    [(method, path, body)] = sdk.sent
    assert (operation.route, operation.http_method, operation.path) == ("single", method, path)
    assert orjson.loads(operation.body) == body


def test_merge(endpoint: Endpoint) -> None:
    operation = one("merge_customers", endpoint, "email", "a@b.c", "id", 42)
    assert entry(operation) == {
        "type": "person",
        "action": "merge",
        "primary": {"email": "a@b.c"},
        "secondary": {"id": "42"},
    }
    assert operation.shard_key == "email:a@b.c"


# -- batch -----------------------------------------------------------------------------------------


def test_batch_gives_one_operation_per_entry(endpoint: Endpoint) -> None:
    event = {"type": "person", "action": "event", "identifiers": {"id": "1"}, "name": "e", "attributes": {}}
    given_id = {**event, "id": EID}
    update = {"type": "person", "action": "identify", "identifiers": {"email": "a@b.c"}, "attributes": {}}
    obj = {
        "type": "object",
        "action": "identify",
        "identifiers": {"object_type_id": "1", "object_id": "acme"},
    }
    delivery = {"type": "delivery", "action": "event", "identifiers": {"id": "d1"}, "name": "opened"}
    entries = [event, given_id, update, obj, delivery]
    before = orjson.dumps(entries)
    operations = build(bind("batch", (entries,), {}), endpoint, now=NOW, mono=1.0)
    assert orjson.dumps(entries) == before  # the caller's dicts are untouched
    bodies = [orjson.loads(op.body) for op in operations]
    assert bodies[0] == {**event, "id": operations[0].event_id}
    assert decode_ms(operations[0].event_id or "") == int(NOW * 1000)
    assert bodies[1:] == [given_id, update, obj, delivery]  # only person events get an id
    assert [op.event_id for op in operations[1:]] == [EID, None, None, None]
    assert [op.shard_key for op in operations] == [
        "id:1",
        "id:1",
        "email:a@b.c",
        "object:object_id=acme:object_type_id=1",
        "delivery:id=d1",
    ]
    assert len({op.op_id for op in operations}) == 5
    assert all(op.route == "v2" and op.method == "batch" for op in operations)


def test_batch_entry_errors_name_the_entry(endpoint: Endpoint) -> None:
    bad = [
        {"type": "person", "action": "delete"},
        {"type": "person", "action": "identify", "attributes": {"d": {1}}},
    ]
    with pytest.raises(SerializationError, match=r'^operations\[1\]\["attributes"\]\["d"\]: set'):
        build(bind("batch", (bad,), {}), endpoint)
    huge = [{"type": "person", "action": "identify", "attributes": {"blob": "x" * V2_ENTRY_LIMIT}}]
    with pytest.raises(OperationTooLarge, match=r"^batch: operations\[0\] is \d+ bytes, over .* 32000 bytes"):
        build(bind("batch", (huge,), {}), endpoint)


# -- sizes -------------------------------------------------------------------------------------------


def test_oversize_event_is_sent_as_the_v1_request(endpoint: Endpoint, sdk: RecordingTrack) -> None:
    data = {"blob": "x" * (V2_ENTRY_LIMIT + 10)}
    operation = one("track", endpoint, "a b", "big", data, timestamp=1700000000)
    sdk.track("a b", "big", data, id=operation.event_id, timestamp=1700000000)
    [(method, path, body)] = sdk.sent
    assert (operation.route, operation.http_method, operation.path) == ("single", method, path)
    assert path == "/api/v1/customers/a%20b/events"
    assert orjson.loads(operation.body) == body
    assert operation.shard_key == "id:a b"


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("identify", ("u1",)),
        ("pageview", ("u1", "/p")),
        ("backfill", ("u1", "ev", 1700000000)),
        ("add_device", ("u1", "tok", "ios")),
    ],
)
def test_every_oversize_person_call_has_its_v1_request(
    endpoint: Endpoint, sdk: RecordingTrack, method: str, args: tuple[Any, ...]
) -> None:
    data = {"blob": "y" * (V2_ENTRY_LIMIT + 1)}
    [operation] = build(bind(method, args, data), endpoint)
    getattr(sdk, method)(*args, **data)
    [(http_method, path, body)] = sdk.sent
    assert (operation.route, operation.http_method, operation.path) == ("single", http_method, path)
    sent = orjson.loads(operation.body)
    if method in ("pageview", "backfill"):
        assert sent.pop("id") == operation.event_id
    assert sent == body


def test_too_large_for_v1_raises(endpoint: Endpoint) -> None:
    with pytest.raises(OperationTooLarge, match=r"^track: event data is \d+ bytes, over .* 100000 bytes"):
        build(bind("track", ("u1", "ev", {"blob": "z" * EVENT_DATA_LIMIT}), {}), endpoint)
    with pytest.raises(
        OperationTooLarge, match=r"^identify: request body is \d+ bytes, over .* 500000 bytes"
    ):
        build(bind("identify", ("u1",), {"blob": "z" * REQUEST_LIMIT}), endpoint)
    with pytest.raises(OperationTooLarge) as info:
        build(bind("track_anonymous", ("a", "ev", {"blob": "z" * EVENT_DATA_LIMIT}), {}), endpoint)
    assert isinstance(info.value, ValueError)
    assert "zzz" not in str(info.value)
    # Just under the limits still goes (as v1).
    [ok] = build(bind("track", ("u1", "ev", {"b": "z" * (EVENT_DATA_LIMIT - 20)}), {}), endpoint)
    assert ok.route == "single"


def test_serialisation_errors_name_the_users_argument(endpoint: Endpoint) -> None:
    with pytest.raises(SerializationError, match=r'^data\["price"\]: Decimal'):
        build(bind("track", ("u1", "ev", {"price": __import__("decimal").Decimal(1)}), {}), endpoint)
    with pytest.raises(InvalidCall, match=r"^track\(\): the event name must be a non-empty string, got set"):
        build(bind("track", ("u1", {"x"}), {}), endpoint)
    with pytest.raises(SerializationError, match=r'^attributes\["tags"\]: set'):
        build(bind("identify", ("u1",), {"tags": {"a"}}), endpoint)
    with pytest.raises(SerializationError, match=r'^device\["attributes"\]\["v"\]: bytes'):
        build(bind("add_device", ("u1", "t", "ios"), {"attributes": {"v": b"1"}}), endpoint)
    with pytest.raises(SerializationError, match=r'^request\["message_data"\]\["x"\]: float infinity'):
        build(bind("send_email", ({"message_data": {"x": float("inf")}},), {}), endpoint)


# -- App API, span context, endpoints --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["email", "push", "sms", "whatsapp", "inbox_message", "in_app"])
def test_app_sends_are_single_requests(app: Endpoint, kind: str) -> None:
    request = {"transactional_message_id": 1, "identifiers": {"id": 5}, "message_data": {"n": 1}}
    [operation] = build(bind("send_" + kind, (request,), {}), app, span_context="ctx", now=NOW, mono=2.0)
    assert (operation.route, operation.http_method, operation.path) == ("single", "POST", "/v1/send/" + kind)
    assert orjson.loads(operation.body) == request
    assert (operation.shard_key, operation.event_id, operation.span_context) == ("id:5", None, "ctx")
    assert operation.endpoint.auth_header == "Bearer app-key"


def test_defaults_read_the_clocks(endpoint: Endpoint) -> None:
    import time

    before_wall, before_mono = time.time(), time.monotonic()
    [operation] = build(bind("delete", ("u1",), {}), endpoint, span_context="span")
    assert before_wall <= operation.created_at <= time.time()
    assert before_mono <= operation.enqueued_at <= time.monotonic()
    assert operation.span_context == "span"


def test_endpoints() -> None:
    track = track_endpoint("site-1", "key:2é", "https://track-eu.customer.io/api/v1/", label="track-eu")
    assert (track.api, track.base_url, track.label) == ("track", "https://track-eu.customer.io", "track-eu")
    assert track.auth_header == _basic_auth_str("site-1", "key:2é")  # what the SDK's session sends
    assert "key" not in repr(track)
    none = track_endpoint(None, None, "127.0.0.1:8443")
    assert none.auth_header == "Basic " + base64.b64encode(b"None:None").decode()
    assert none.base_url == "https://127.0.0.1:8443"
    app = app_endpoint("k", "http://127.0.0.1:9000")
    assert (app.api, app.base_url, app.auth_header, app.label) == (
        "app",
        "http://127.0.0.1:9000",
        "Bearer k",
        "app",
    )
    assert origin("https://api.customer.io") == "https://api.customer.io"


def test_fast_construction_equals_the_constructor(endpoint: Endpoint) -> None:
    # build() skips Operation's keyword call for speed; it must set every slot the same way.
    from cioguard.operations.construct import make_operation

    args: dict[str, Any] = {
        "endpoint": endpoint,
        "method": "track",
        "route": "v2",
        "http_method": "POST",
        "path": "/api/v2/batch",
        "body": b"{}",
        "shard_key": "id:1",
        "op_id": "A",
        "event_id": "B",
        "enqueued_at": 1.5,
        "created_at": 2.5,
        "span_context": "ctx",
    }
    fast = make_operation(*args.values())
    slow = Operation(**args)
    for name in Operation.__slots__:
        assert getattr(fast, name) == getattr(slow, name), name
    assert repr(fast) == repr(slow)


@pytest.mark.parametrize(
    ("method", "args", "fix"),
    [
        ("track", ("u1", None), "non-empty string, got NoneType"),
        ("track", ("u1", "   "), "got an empty string"),
        ("track", ("u1", 5), "got int"),
        ("track", ("u1", "a" * 101), "100-byte limit"),
        ("track", ("u1", "é" * 51), "100-byte limit"),
        ("pageview", ("u1", ""), "the page must be"),
        ("track_anonymous", ("anon", None), "event name"),
        ("backfill", ("u1", None, 1_700_000_000), "event name"),
        ("add_device", ("u1", "token", "windows"), "'ios' or 'android'"),
        ("delete", ("cio_",), "names no person"),
    ],
)
def test_arguments_customerio_rejects_are_refused_at_the_call(
    endpoint: Endpoint, method: str, args: tuple[Any, ...], fix: str
) -> None:
    with pytest.raises(InvalidCall, match=fix) as info:
        build(bind(method, args, {}), endpoint)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CustomerIOException)


def test_names_at_the_limit_are_accepted(endpoint: Endpoint) -> None:
    [op] = build(bind("track", ("u1", "a" * 100), {}), endpoint)
    assert op.route == "v2"
    [op] = build(bind("track", ("u1", "é" * 50), {}), endpoint)  # 100 bytes in UTF-8
    assert op.route == "v2"
