"""Serialisation: the SDK's ``_sanitize`` semantics, rejected types named by path, no mutation."""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import re
import uuid
from collections import OrderedDict, namedtuple
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from customerio import CustomerIOException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cioguard.operations.errors import SerializationError
from cioguard.operations.serialize import dumps, dumps_parts, to_unix_seconds

from .conftest import RecordingTrack


def sdk_json(sdk: RecordingTrack, data: dict[str, Any]) -> Any:
    """What the SDK sends: ``_sanitize`` then ``json.dumps(allow_nan=False)`` (requests' ``json=``)."""
    return json.loads(json.dumps(sdk._sanitize(data), allow_nan=False))


@dataclasses.dataclass
class Point:
    x: int


class Opaque:
    pass


REJECTED: list[tuple[Any, str]] = [
    (Decimal("9.99"), "Decimal is not JSON-serialisable by Customer.io; convert it to float or str"),
    ({1, 2}, "set is not JSON-serialisable by Customer.io; convert it to a list"),
    (frozenset({1}), "frozenset is not JSON-serialisable by Customer.io; convert it to a list"),
    (b"raw", "bytes is not JSON-serialisable by Customer.io; decode it to str (base64 for binary data)"),
    (
        bytearray(b"x"),
        "bytearray is not JSON-serialisable by Customer.io; decode it to str (base64 for binary data)",
    ),
    (date(2024, 1, 1), "date is not JSON-serialisable by Customer.io; convert it to a datetime"),
    (time(12, 0), "time is not JSON-serialisable by Customer.io; convert it to str"),
    (timedelta(seconds=5), "timedelta is not JSON-serialisable by Customer.io"),
    (uuid.UUID(int=7), "UUID is not JSON-serialisable by Customer.io; convert it to str"),
    (float("inf"), "float infinity is not JSON-serialisable by Customer.io"),
    (float("-inf"), "float infinity is not JSON-serialisable by Customer.io"),
    (Point(1), "Point is not JSON-serialisable by Customer.io; convert it with dataclasses.asdict()"),
    (Opaque(), "Opaque is not JSON-serialisable by Customer.io; convert it to a dict"),
    (2**64, "integer beyond 64 bits is not JSON-serialisable by Customer.io"),
    (-(2**63) - 1, "integer beyond 64 bits"),
    (1 + 2j, "complex is not JSON-serialisable by Customer.io"),
]


@pytest.mark.parametrize(("value", "problem"), REJECTED)
def test_rejected_values_are_named_by_path(sdk: RecordingTrack, value: Any, problem: str) -> None:
    data = {"order": {"items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c", "price": value}]}}
    with pytest.raises(SerializationError) as info:
        dumps(data, "data")
    assert str(info.value).startswith('data["order"]["items"][2]["price"]: ' + problem)
    assert info.value.path == 'data["order"]["items"][2]["price"]'
    assert info.value.__context__ is None  # no orjson traceback chained under the user's error
    if isinstance(value, int):
        return  # json would send a big int; Customer.io's 64-bit fields would not hold it
    # The SDK cannot send these either (it fails later, inside send_request, "after 3 retries").
    with pytest.raises((TypeError, ValueError)):
        sdk_json(sdk, data)


@pytest.mark.parametrize(("value", "_problem"), REJECTED)
def test_error_messages_never_echo_the_value(value: Any, _problem: str) -> None:
    secret = {"ssn": value}
    with pytest.raises(SerializationError) as info:
        dumps(secret, "data")
    text = str(info.value)
    if not isinstance(value, float):  # str(inf) is "inf", a part of the word "infinity"
        assert repr(value) not in text
        assert str(value) not in text


def test_error_is_both_type_error_and_the_sdk_exception() -> None:
    with pytest.raises(TypeError):
        dumps({"a": {1}}, "data")
    with pytest.raises(CustomerIOException):
        dumps({"a": {1}}, "data")


def test_keys_json_writes_as_strings_are_sent_as_the_sdk_sends_them() -> None:
    data = {"cart": {101: 2, 1.5: "x", True: 1, None: 0, 1e-7: 3}, "at": {3: datetime(2024, 1, 1)}}
    expected = json.dumps(
        {"cart": {"101": 2, "1.5": "x", "true": 1, "null": 0, "1e-07": 3}, "at": {"3": 1704067200}}
    )
    assert orjson.loads(dumps(data, "data")) == json.loads(expected)
    assert dumps({"a": [{7: None}]}, "data") == b'{"a":[{"7":null}]}'


def test_other_keys_are_rejected_without_echoing_them() -> None:
    with pytest.raises(SerializationError, match=r'^data\["a"\]: dict key of type tuple is not') as info:
        dumps({"a": {(12345, 1): "x"}}, "data")
    assert "12345" not in str(info.value)
    with pytest.raises(SerializationError, match=r'^data\["a"\]: a dict key of inf or nan'):
        dumps({"a": {float("inf"): "x"}}, "data")
    with pytest.raises(SerializationError, match=r"^data: dict key of type date"):
        dumps({date(2024, 1, 1): "x"}, "data")


def test_keys_with_quotes_are_escaped_in_the_path() -> None:
    with pytest.raises(SerializationError, match=re.escape('data["a \\"b\\""][0]: set')):
        dumps({'a "b"': [{1}]}, "data")


def test_cycles_and_deep_nesting_are_rejected() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(SerializationError, match="nesting deeper than 250 levels"):
        dumps(loop, "data")
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(SerializationError, match="nesting deeper") as info:
        dumps({"d": deep}, "data")
    assert len(info.value.path) <= 161  # shortened, not 250 levels of [0]
    fine: Any = 1
    for _ in range(200):
        fine = [fine]
    assert orjson.loads(dumps({"d": fine}, "data")) == {"d": fine}


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
        datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc),
        datetime(2024, 1, 1, 12, 0),
        datetime(2024, 1, 1, 12, 0, 0, 999999),
        datetime(1969, 12, 31, 23, 59, 59, 500000),
        datetime(1900, 1, 1),
        datetime.max.replace(tzinfo=timezone.utc) - timedelta(days=1),
    ],
)
def test_datetimes_match_the_sdk_at_any_depth(sdk: RecordingTrack, value: datetime) -> None:
    data = {"at": value, "list": [value, {"deep": [[value]]}]}
    assert orjson.loads(dumps(data, "data")) == sdk_json(sdk, data)
    assert to_unix_seconds(value) == sdk._datetime_to_timestamp(value)


def test_nan_becomes_null_like_the_sdk(sdk: RecordingTrack) -> None:
    data = {"n": float("nan"), "l": [float("nan"), 1.5], "none": None, "s": "null"}
    assert dumps(data, "data") == b'{"n":null,"l":[null,1.5],"none":null,"s":"null"}'
    assert orjson.loads(dumps(data, "data")) == sdk_json(sdk, data)


def test_lookalikes_of_rejected_values_pass() -> None:
    # The fast path's checks ("null" or a UUID-shaped string in the output) must not misfire.
    text = str(uuid.UUID(int=7))
    data = {"id": text, "ids": [text.upper(), text], "word": "nullable", "neg": -1}
    assert orjson.loads(dumps(data, "data")) == data


def test_subclasses_and_tuples_are_sent_as_json_would(sdk: RecordingTrack) -> None:
    class Money(float):
        pass

    class Tag(str):
        pass

    pair = namedtuple("pair", "a b")
    data = {"m": Money(2.5), "t": Tag("x"), "p": pair(1, 2), "o": OrderedDict(b=1), "tup": (1, "a")}
    assert orjson.loads(dumps(data, "data")) == sdk_json(sdk, data)
    with pytest.raises(SerializationError, match=r'^data\["m"\]: float infinity'):
        dumps({"m": Money("inf")}, "data")


def test_enum_members_are_sent_as_their_value() -> None:
    # A deliberate leniency (documented): orjson sends members by value where json would refuse.
    class Plan(enum.Enum):
        PRO = "pro"

    class Level(enum.IntEnum):
        TWO = 2

    assert orjson.loads(dumps({"p": Plan.PRO, "l": Level.TWO}, "data")) == {"p": "pro", "l": 2}


def test_callers_objects_are_not_mutated() -> None:
    at = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=3)))
    data = {"at": at, "n": float("nan"), "items": [{"at": at, "tags": ["a"]}], "t": (at,)}
    before = copy.deepcopy(data)
    dumps(data, "data")
    assert repr(data) == repr(before)
    assert data["items"][0]["at"] is at  # type: ignore[index]


def test_dumps_parts_names_the_users_argument() -> None:
    entry = {"type": "person", "name": {1}, "attributes": {"k": [Decimal(1)]}}
    with pytest.raises(SerializationError, match=r'^data\["k"\]\[0\]: Decimal'):
        dumps_parts({"type": "person", "attributes": entry["attributes"]}, {"attributes": "data"})
    with pytest.raises(SerializationError, match=r"^name: set"):
        dumps_parts(entry, {"attributes": "data", "name": "name"})
    with pytest.raises(SerializationError, match=r"^other: float infinity"):
        dumps_parts({"other": float("inf")}, {})


# -- property: either exactly the SDK's JSON, or a SerializationError naming a path --------------

keys = st.text(max_size=8)
datetimes = st.datetimes(
    min_value=datetime(1901, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.none()
    | st.just(timezone.utc)
    | st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(max_size=12)
    | datetimes
)
bad = (
    st.decimals(allow_nan=False)
    | st.sets(st.integers(), max_size=2)
    | st.binary(max_size=4)
    | st.dates()
    | st.uuids()
    | st.sampled_from([float("inf"), float("-inf"), 2**70])
)
json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4)
)
maybe_bad = st.recursive(
    scalars | bad,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
PATH = re.compile(r'^data(\[(\d+|"(?:[^"\\]|\\.)*")\])*: ')


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, json_like, max_size=5))
def test_property_valid_data_serialises_exactly_like_the_sdk(data: dict[str, Any]) -> None:
    sdk = RecordingTrack()
    assert orjson.loads(dumps(data, "data")) == sdk_json(sdk, data)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, maybe_bad, max_size=5))
def test_property_bytes_equal_the_sdk_or_error_names_a_path(data: dict[str, Any]) -> None:
    sdk = RecordingTrack()
    try:
        expected = sdk_json(sdk, data)
    except (TypeError, ValueError):
        expected = None
    try:
        out: bytes | None = dumps(data, "data")
        problem = ""
    except SerializationError as exc:
        out, problem = None, str(exc)
    if out is None:
        assert PATH.match(problem), problem
        assert expected is None or "integer beyond 64 bits" in problem  # json allows big ints
    else:
        assert expected is not None, "sent something the SDK cannot send"
        assert orjson.loads(out) == expected
