"""Bad input, the edges hypothesis rarely reaches: deep nesting, huge strings, NaN/inf, every
unsendable type, naive/aware datetimes, None/""/0 ids, unicode. Each case is delivered exactly as
the plain SDK would send it, refused at the caller's line naming the field, or (over Customer.io's
size limits) dropped as ``oversize`` — counted and logged, never silently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
import warnings
from decimal import Decimal
from typing import Any

import pytest
from customerio import CustomerIO
from fuzz_support import VALIDATION_ERRORS, SdkOracle, deep
from reliability_support import SITE_ID, TRACK_KEY

import cioguard
from cioguard.testing import FakeCustomerIO

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

DELIVERED: list[tuple[str, Any]] = [
    ("deep_200", deep(200)),
    ("string_20kb", "x" * 20_000),
    ("string_40kb_v1_route", "é" * 20_000),
    ("nan", float("nan")),
    ("naive_datetime", dt.datetime(2024, 1, 1, 12, 0)),
    ("aware_datetime", dt.datetime(2024, 1, 1, 12, 0, tzinfo=IST)),
    ("nested_datetimes", [{"at": dt.datetime(2000, 2, 29, tzinfo=dt.timezone.utc)}]),
    ("unicode", {"名前": "ünï©ødé 🙂", "rtl": "\u202eabc"}),
    ("empty_containers", {"a": [], "b": {}, "c": ""}),
    ("int64_edges", [-(2**63), 2**63 - 1]),
]
REFUSED: list[tuple[str, Any, str]] = [
    ("deep_300", deep(300), 'data["k"]'),
    ("inf", float("inf"), 'data["k"]'),
    ("minus_inf", [1, float("-inf")], 'data["k"][1]'),
    ("set", {1, 2}, 'data["k"]'),
    ("bytes", b"\x00\xff", 'data["k"]'),
    ("decimal", Decimal("1.10"), 'data["k"]'),
    ("date", dt.date(2024, 1, 1), 'data["k"]'),
    ("uuid", uuid.UUID(int=7), 'data["k"]'),
    ("object", object(), 'data["k"]'),
]


def delivered_data(fake: FakeCustomerIO, name: str) -> Any:
    matches = [e.data for e in fake.events if e.name == name]
    assert len(matches) == 1, (name, len(matches))
    return matches[0]


@pytest.mark.parametrize(("case", "value"), DELIVERED, ids=[c for c, _ in DELIVERED])
def test_delivered_exactly_as_the_sdk_sends(
    fake: FakeCustomerIO, instrument: Any, case: str, value: Any
) -> None:
    instrument(track_url=fake.track_url)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    sdk = SdkOracle().run("track", ("edge-person", case), {"data": {"k": value}})
    assert sdk[0] == "ok"
    cio.track("edge-person", case, data={"k": value})
    assert cioguard.flush(timeout=10)
    assert delivered_data(fake, case) == json.loads(sdk[3])["data"]


@pytest.mark.parametrize(("case", "value", "path"), REFUSED, ids=[c for c, _, _ in REFUSED])
def test_refused_at_the_callers_line_naming_the_field(
    fake: FakeCustomerIO, instrument: Any, case: str, value: Any, path: str
) -> None:
    instrument(track_url=fake.track_url)
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    with pytest.raises(VALIDATION_ERRORS) as refused:
        cio.track("edge-person", case, data={"k": value})
    assert path in str(refused.value)
    assert cioguard.stats()["accepted"] == 0


def send_oversize(fake: FakeCustomerIO) -> str:
    """Track event data over 100 KB; the refusal message, or "" when the call was accepted."""
    cio = CustomerIO(SITE_ID, TRACK_KEY)
    try:
        cio.track("edge-person", "huge", data={"k": "x" * 150_000})
    except VALIDATION_ERRORS as exc:  # refusing at the caller's line is acceptable too
        return str(exc)
    assert not cioguard.flush(timeout=10)  # it was dropped (oversize): flush tells the truth
    assert not [e for e in fake.events if e.name == "huge"]
    return ""


def test_oversize_is_dropped_and_logged(
    fake: FakeCustomerIO, instrument: Any, caplog: pytest.LogCaptureFixture
) -> None:
    instrument(track_url=fake.track_url)
    caplog.set_level(logging.WARNING)
    refusal = send_oversize(fake)
    if refusal:
        assert "limit" in refusal
    else:
        assert any("oversize" in r.getMessage() and "limit" in r.getMessage() for r in caplog.records)


def test_oversize_drop_is_counted_in_stats(fake: FakeCustomerIO, instrument: Any) -> None:
    instrument(track_url=fake.track_url)
    if send_oversize(fake):
        return  # refused at the caller's line: nothing to count
    assert cioguard.stats()["dropped"]["oversize"] == 1


@pytest.mark.parametrize("customer_id", [None, "", 0, "0", "é漢字🙂", "a/b?c#d", "x" * 150, 2**40])
def test_identifiers_follow_the_sdk(fake: FakeCustomerIO, instrument: Any, customer_id: Any) -> None:
    instrument(track_url=fake.track_url, pitfalls="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the oracle's second client is CIO009, by design
        cio = CustomerIO(SITE_ID, TRACK_KEY)
        sdk = SdkOracle().run("identify", (customer_id,), {"email": "e@example.com"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if sdk[0] == "error":
            with pytest.raises(VALIDATION_ERRORS):
                cio.identify(customer_id, email="e@example.com")
            return
        cio.identify(customer_id, email="e@example.com")
    assert cioguard.flush(timeout=10)
    person = fake.person(str(customer_id))
    assert person is not None
    assert person.attributes["email"] == "e@example.com"
    assert cioguard.stats()["dropped"]["rejected"] == 0
