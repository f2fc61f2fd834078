"""``bind`` against the real SDK 3.2.0: same errors, same v1 requests."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from customerio import (
    CustomerIOException,
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
)

from cioguard.operations import mapping
from cioguard.operations.calls import APP_METHODS, TRACK_METHODS, bind, binder, event_timestamp
from cioguard.operations.errors import SerializationError
from cioguard.operations.serialize import dumps, dumps_parts

from .conftest import RecordingApp, RecordingTrack

CET = timezone(timedelta(hours=2))


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        return type(exc), str(exc)
    return None, ""


# -- error parity ------------------------------------------------------------------------------

BAD_TRACK_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("identify", (), {}),
    ("identify", (None,), {}),
    ("identify", ("",), {}),
    ("identify", (1, 2), {}),
    ("identify", (), {"customer_id": 1}),
    ("track", (), {}),
    ("track", ("u1",), {}),
    ("track", ("", "ev"), {}),
    ("track", (None, "ev"), {}),
    ("track", ("u1", "ev", {}, None, None, 5), {}),
    ("track", ("u1", "ev"), {"extra": 1}),
    ("track", ("u1", "ev"), {"customer_id": "u2"}),
    ("track", ("u1", "ev"), {"self": 1}),
    ("track", ("u1", "ev"), {"data": [1, 2]}),
    ("track_anonymous", (), {}),
    ("track_anonymous", ("a",), {"nme": "x"}),
    ("track_anonymous", ("a", "ev"), {"data": "text"}),
    ("pageview", ("u1",), {}),
    ("pageview", ("", "/home"), {}),
    ("pageview", ("u1", "/a", "/b"), {}),
    ("backfill", ("u1", "ev"), {}),
    ("backfill", ("", "ev", 1), {}),
    ("backfill", ("u1", "ev", "not-a-time"), {}),
    ("backfill", ("u1", "ev", None), {}),
    ("backfill", ("u1", "ev", object()), {}),
    ("backfill", ("u1", "ev", float("nan")), {}),
    ("backfill", ("u1", "ev", "1.5"), {}),
    ("delete", (), {}),
    ("delete", ("",), {}),
    ("delete", ("u1", "u2"), {}),
    ("add_device", ("u1", "tok"), {}),
    ("add_device", ("", "tok", "ios"), {}),
    ("add_device", ("u1", "", "ios"), {}),
    ("add_device", ("u1", None, "ios"), {}),
    ("add_device", ("u1", "tok", ""), {}),
    ("add_device", ("u1", "tok", None), {}),
    ("delete_device", ("u1",), {}),
    ("delete_device", (None, "tok"), {}),
    ("delete_device", ("u1", ""), {}),
    ("suppress", (), {}),
    ("suppress", ("",), {}),
    ("unsuppress", (None,), {}),
    ("unsuppress", ("a", "b"), {}),
    ("merge_customers", ("id", "a", "id"), {}),
    ("merge_customers", ("phone", "a", "id", "b"), {}),
    ("merge_customers", ("id", "a", "ID", "b"), {}),
    ("merge_customers", ("id", "", "id", "b"), {}),
    ("merge_customers", ("email", "a@b.c", "cio_id", None), {}),
    ("merge_customers", ("x", "", "y", ""), {}),
    ("batch", ([],), {}),
    ("batch", (None,), {}),
    ("batch", (), {}),
    ("batch", ([{"type": "person", "action": "delete"}], 1), {}),
]


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_TRACK_CALLS)
def test_track_errors_match_the_sdk(
    sdk: RecordingTrack, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = outcome(getattr(sdk, method), *args, **kwargs)
    assert expected[0] is not None, "the SDK accepted a call this table says is wrong"
    got = outcome(bind, method, args, kwargs)
    assert got[0] is expected[0]
    assert got[1].startswith(expected[1])  # CIO015 may add the 3.x spelling
    assert sdk.sent == []


BAD_APP_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    (method, args, kwargs)
    for method in sorted(APP_METHODS)
    for args, kwargs in [((), {}), (({}, {}), {}), ((), {"req": {}}), (({},), {"request": {}})]
]


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_APP_CALLS)
def test_app_signature_errors_match_the_sdk(
    sdk_app: RecordingApp, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = outcome(getattr(sdk_app, method), *args, **kwargs)
    assert expected[0] is TypeError
    got = outcome(bind, method, args, kwargs)
    assert got[0] is TypeError
    assert got[1].startswith(expected[1])


def test_binders_carry_the_sdk_names() -> None:
    track = {
        "identify", "track", "track_anonymous", "pageview", "backfill", "delete", "add_device",
        "delete_device", "suppress", "unsuppress", "merge_customers", "batch",
    }  # fmt: skip
    app = {"send_email", "send_push", "send_sms", "send_whatsapp", "send_inbox_message", "send_in_app"}
    assert (track, app) == (TRACK_METHODS, APP_METHODS)
    assert binder("track").__qualname__ == "CustomerIO.track"
    assert binder("send_sms").__qualname__ == "APIClient.send_sms"


def test_zero_ids_are_accepted_like_the_sdk(sdk: RecordingTrack) -> None:
    # 3.1+: the blank check is ``is None or == ""``, so 0 is a valid id.
    sdk.track(0, "ev")
    call = bind("track", (0, "ev"), {})
    assert call.customer_id == 0
    assert sdk.sent[0][1] == "/api/v1/customers/0/events"


def test_batch_entries_must_be_operations() -> None:
    with pytest.raises(CustomerIOException, match=r"operations\[1\] must be a dict with 'type' and 'action'"):
        bind("batch", ([{"type": "person", "action": "delete"}, {"type": "person"}],), {})
    with pytest.raises(CustomerIOException, match=r"operations\[0\]"):
        bind("batch", (["not a dict"],), {})
    with pytest.raises(SerializationError, match=r"^operations: generator is not a list of dicts"):
        bind("batch", ((op for op in [{"type": "person", "action": "delete"}]),), {})


def test_app_request_of_the_wrong_type_names_it() -> None:
    with pytest.raises(
        SerializationError, match=r"^request: SendPushRequest is not a SendEmailRequest or a dict"
    ):
        bind("send_email", (SendPushRequest(),), {})
    # Both a TypeError and the SDK's exception, so either ``except`` keeps working.
    with pytest.raises(CustomerIOException):
        bind("send_sms", ("text",), {})


# -- what is bound -------------------------------------------------------------------------------


def test_track_call_keeps_the_raw_timestamp_and_the_callers_id() -> None:
    call = bind("track", ("u1", "ev", {"a": 1}, "my-id", 1700000000123), {})
    assert (call.method, call.customer_id, call.name, call.data) == ("track", "u1", "ev", {"a": 1})
    assert (call.event_id, call.timestamp) == ("my-id", 1700000000123)
    mapping_data = {"x": 1}
    assert bind("track", ("u1", "ev"), {"data": mapping_data}).data is mapping_data  # no copy needed
    assert bind("track", ("u1", "ev"), {"data": None}).data == {}
    proxy = MappingProxyType({"a": 1})
    copied = bind("track_anonymous", ("a", "ev"), {"data": proxy}).data
    assert (type(copied), copied) == (dict, {"a": 1})  # like the SDK's _sanitize, a plain dict


def test_extras_per_method() -> None:
    call = bind("add_device", ("u1", "tok", "ios"), {"last_used": 5})
    assert call.extra == {"device_id": "tok", "platform": "ios"}
    assert call.data == {"last_used": 5}
    assert bind("delete_device", ("u1", "tok"), {}).extra == {"device_id": "tok"}
    merge = bind("merge_customers", ("email", "a@b.c", "id", 7), {})
    assert merge.extra == {
        "primary_id_type": "email", "primary_id": "a@b.c", "secondary_id_type": "id", "secondary_id": 7,
    }  # fmt: skip
    ops = [{"type": "person", "action": "delete", "identifiers": {"id": "1"}}]
    batch = bind("batch", (ops,), {})
    assert batch.extra is not None
    assert batch.extra["operations"] == ops
    assert batch.extra["operations"] is not ops  # the caller may reuse the list
    assert bind("identify", ("u1",), {"email": "a@b.c"}).data == {"email": "a@b.c"}
    anonymous = bind("track_anonymous", ("anon", "ev"), {})
    assert (anonymous.customer_id, anonymous.extra) == (None, {"anonymous_id": "anon"})


@pytest.mark.parametrize(
    "raw",
    [
        None, 0, 1700000000, 1700000000123, True, 1.7e9, 1700000000.9, "1700000000", " 17 ", "1.5", "abc",
        "", float("nan"), float("inf"), datetime(2024, 1, 1, 12, tzinfo=CET), datetime(2024, 1, 1),
        datetime(1969, 12, 31, 23, 59, 59, 500000), [1], {"a": 1}, b"17",
    ],
)  # fmt: skip
def test_event_timestamp_is_the_sdks(sdk: RecordingTrack, raw: Any) -> None:
    body = sdk._build_event("ev", None, timestamp=raw)
    assert event_timestamp(raw) == body.get("timestamp")
    assert bind("track", ("u1", "ev"), {"timestamp": raw}).timestamp is raw


# -- v1 requests equal the SDK's -----------------------------------------------------------------

NOW = datetime(2024, 5, 1, 8, 30, tzinfo=CET)
DATA = {
    "plan": "pro",
    "at": NOW,
    "nested": {"when": [datetime(2024, 1, 1), 1.5], "n": float("nan")},
    "none": None,
}

GOOD_TRACK_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("identify", ("u1",), {"email": "u1@example.com", "created_at": NOW, "_timestamp": 1700000000}),
    ("identify", ("a+b@x.com",), {"plan": {"tier": 2, "since": datetime(2020, 2, 2)}}),
    ("identify", ("cio_03000001",), {"email": "new@example.com"}),
    ("identify", (42,), {}),
    ("track", ("u1", "purchase"), {"data": DATA}),
    ("track", ("u 1/2?", "purchase", DATA, "01HZX0000000000000000000AA", NOW), {}),
    ("track", (7, "ev"), {"timestamp": "1700000000"}),
    ("track", ("u1", "ev"), {"timestamp": "garbage"}),
    ("track", ("u1", "ev"), {"timestamp": 1700000000.7, "data": {}}),
    ("track_anonymous", ("anon-1", "viewed"), {"data": DATA, "timestamp": NOW}),
    ("track_anonymous", ("", "invite"), {"data": {"recipient": "x@y.z"}}),
    ("track_anonymous", (None, "invite"), {"id": "my-id"}),
    ("pageview", ("u1", "/pricing"), {"referrer": "https://example.com", "at": NOW}),
    ("pageview", ("ü@ex.com", "/"), {}),
    ("backfill", ("u1", "old", NOW), {"k": 1}),
    ("backfill", ("u1", "old", "1700000000"), {}),
    ("backfill", ("u1", "old", 1.9e9), {"nested": DATA}),
    ("delete", ("u1",), {}),
    ("delete", ("a/b",), {}),
    ("suppress", ("u1@example.com",), {}),
    ("unsuppress", (99,), {}),
    ("add_device", ("u1", "tok-1", "ios"), {}),
    ("add_device", ("u1", "tok-1", "android"), {"last_used": NOW, "attributes": {"app_version": "1.2"}}),
    ("add_device", ("u1", "tok-1", "ios"), {"id": "overwritten", "device_os": "17"}),
    ("delete_device", ("u1", "tok/1+2"), {}),
    ("merge_customers", ("email", "a@b.c", "id", "old-1"), {}),
    ("merge_customers", ("cio_id", "a3000001", "id", 42), {}),
]


def ours_v1(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], event_id: Any
) -> tuple[str, str, Any]:
    call = bind(method, args, kwargs)
    if method in {"track", "track_anonymous", "pageview", "backfill"}:
        given = call.event_id
        http_method, path, body, labels = mapping.v1_event(call, event_id if given is None else given)
    else:
        http_method, path, body, labels = mapping.v1_request(call)
    raw = dumps(body, labels) if isinstance(labels, str) else dumps_parts(body, labels)
    return http_method, path, orjson.loads(raw)


@pytest.mark.parametrize(("method", "args", "kwargs"), GOOD_TRACK_CALLS)
def test_v1_request_equals_the_sdks(
    sdk: RecordingTrack, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    getattr(sdk, method)(*args, **kwargs)
    [(sdk_method, sdk_path, sdk_body)] = sdk.sent
    http_method, path, body = ours_v1(method, args, kwargs, event_id="01HZXEVENT0000000000000000")
    assert (http_method, path) == (sdk_method, sdk_path)
    if isinstance(sdk_body, dict) and "name" in sdk_body and "id" not in sdk_body:
        # cioguard adds a ULID to every event so retries are deduplicated; nothing else differs.
        assert body.pop("id") == "01HZXEVENT0000000000000000"
    assert body == sdk_body


def test_backfill_nan_and_inf_timestamps_match(sdk: RecordingTrack) -> None:
    for raw in (float("nan"), float("inf")):
        assert outcome(bind, "backfill", ("u1", "ev", raw), {}) == outcome(sdk.backfill, "u1", "ev", raw)
    assert math.isnan(float("nan"))


APP_REQUESTS: list[tuple[str, Any]] = [
    (
        "send_email",
        SendEmailRequest(to="a@b.c", _from="x@y.z", subject="Hi", body="<p>", identifiers={"id": "1"}),
    ),
    (
        "send_email",
        {"transactional_message_id": 3, "to": "a@b.c", "message_data": {"at": NOW}, "send_at": NOW},
    ),
    (
        "send_push",
        SendPushRequest(transactional_message_id="welcome", identifiers={"id": 1}, device={"token": "t"}),
    ),
    (
        "send_sms",
        SendSMSRequest(transactional_message_id=1, to="+15555550100", identifiers={"email": "a@b.c"}),
    ),
    ("send_whatsapp", SendWhatsAppRequest(transactional_message_id=1, to="+15555550100", tracked=False)),
    ("send_inbox_message", SendInboxMessageRequest(transactional_message_id=1, identifiers={"cio_id": "a1"})),
    ("send_in_app", SendInAppRequest(transactional_message_id=1, message_data={"n": float("nan")})),
    ("send_in_app", {}),
]


@pytest.mark.parametrize(("method", "request_"), APP_REQUESTS)
def test_app_body_equals_the_sdks(sdk_app: RecordingApp, method: str, request_: Any) -> None:
    getattr(sdk_app, method)(request_)
    [(sdk_method, sdk_path, sdk_body)] = sdk_app.sent
    call = bind(method, (request_,), {})
    assert orjson.loads(dumps(call.data, "request")) == sdk_body
    assert (sdk_method, sdk_path) == ("POST", "/v1/send/" + method[5:])
