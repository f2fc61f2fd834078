"""Each pure rule function on its own: what fires, what does not, and what the message hides."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cioguard.pitfalls import names, people, timestamps
from cioguard.pitfalls.limits import attributes_findings, event_data_finding, id_finding
from cioguard.pitfalls.transport import key_shape_finding, rounded_ms
from cioguard.shapes import canonical_name, find_pii, luhn_valid, safe_name


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("jane.doe+news@example.co.uk", ["email address"]),
        ("called_+1 (555) 123-4567", ["phone number"]),
        ("sms_to_+447700900123", ["phone number"]),
        ("paid_4111 1111 1111 1111", ["card number"]),
        ("paid_4111111111111111", ["card number"]),
        ("paid_4111111111111112", []),  # fails Luhn
        ("order_550e8400-e29b-41d4-a716-446655440000", []),  # a uuid is an id, not a phone
        ("checkout_v2_completed", []),
    ],
)
def test_find_pii(text: str, kinds: list[str]) -> None:
    assert find_pii(text) == kinds


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


@pytest.mark.parametrize(
    ("name", "dynamic"),
    [
        ("viewed_SKU-12345", True),
        ("order_550e8400-e29b-41d4-a716-446655440000_paid", True),
        ("cart_deadbeef42_updated", True),
        ("viewed_sku1234", True),
        ("user_98765_login", True),
        ("checkout_v2_completed", False),
        ("oauth2_login", False),
        ("top_100_viewed", False),
        ("sale_2024_viewed", False),
        ("h264_video_played", False),
    ],
)
def test_dynamic_name_rule(name: str, dynamic: bool) -> None:
    found = names.dynamic_finding(name)
    assert (found is not None) == dynamic
    if found is not None:
        assert found.code == "CIO006"
        assert "12345" not in found.message
        assert "550e8400" not in found.message


def test_style_rule_and_canonical_form() -> None:
    for variant in ("UserSignedUp", "user-signed-up", "user signed up", "userSignedUp", "User_Signed_Up"):
        assert canonical_name(variant) == "user_signed_up"
        found = names.style_finding(variant)
        assert found is not None
        assert "'user_signed_up'" in found.detail
    assert names.style_finding("user_signed_up") is None
    seen = names.style_finding("UserSignedUp", variant_of="user_signed_up")
    assert seen is not None
    assert "variant of 'user_signed_up'" in seen.detail
    assert seen.message == found.message  # constant text: Python shows it once per line


def test_pii_rule_masks_the_value() -> None:
    found = names.pii_finding("welcome:jane@example.com")
    assert found is not None
    assert found.code == "CIO012"
    assert "jane" not in found.message + found.detail
    assert found.detail == "email address"


def test_name_length_rule() -> None:
    assert names.length_finding("a" * 100) is None
    assert names.length_finding(" " + "a" * 100 + " ") is None  # Customer.io trims spaces
    found = names.length_finding("é" * 51)  # 102 bytes
    assert found is not None
    assert "102 bytes" in found.detail
    assert "102" not in found.message


def test_name_verdict_precedence() -> None:
    book = names.NameBook()
    every = frozenset(f"CIO{n:03d}" for n in range(1, 15))
    assert [f.code for f in names.name_verdict("jane@example.com", book, every)] == ["CIO012"]
    assert [f.code for f in names.name_verdict("viewed_SKU-12345", book, every)] == ["CIO006"]
    assert [f.code for f in names.name_verdict("UserSignedUp", book, every)] == ["CIO010"]
    long_dynamic = "viewed_" + "x" * 90 + "_12345"
    assert [f.code for f in names.name_verdict(long_dynamic, book, every)] == ["CIO006", "CIO014"]
    # Page names: URLs with ids are normal; only PII and length count.
    assert names.name_verdict("/products/12345", book, every, event=False) == []


def test_name_book_variants_and_explosion() -> None:
    book = names.NameBook(max_names=3)
    assert book.first_spelling("user_signed_up") is None
    assert book.first_spelling("UserSignedUp") == "user_signed_up"
    assert book.first_spelling("user_signed_up") is None  # the same spelling is not a variant
    for name in ("a_b", "c_d"):
        book.first_spelling(name)
    assert book.explosion_finding() is None  # 3 distinct names: at the bound
    book.first_spelling("e_f")
    found = book.explosion_finding()
    assert found is not None
    assert found.code == "CIO006"
    assert "more than 3 distinct event names" in found.message
    assert "disabled_pitfalls=['CIO006']" in found.message  # an option that exists
    assert book.explosion_finding() is None  # once: later new names are counted, not warned
    assert book.exploded


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1704067200, None),
        (1704067200.5, None),
        (1704067200000, "milliseconds"),
        (1704067200000000, "microseconds"),
        (1704067200000000000, "nanoseconds"),
        ("1704067200000", "milliseconds"),
        ("2024-01-01T00:00:00Z", "ISO-8601 string"),
        ("2024-01-01", "ISO-8601 string"),
        (datetime(2024, 1, 1, tzinfo=timezone.utc), None),
        (True, None),
        ("pro", None),
    ],
)
def test_timestamp_problem(value: object, unit: str | None) -> None:
    problem = timestamps.timestamp_problem(value)
    assert (problem[0] if problem else None) == unit


def test_timestamp_keys() -> None:
    for key in ("timestamp", "_timestamp", "created_at", "trial_ends_at"):
        assert timestamps.is_timestamp_key(key)
    for key in ("at", "status", "created", "attachment"):
        assert not timestamps.is_timestamp_key(key)


def test_check_timestamps_fixes_a_copy() -> None:
    data = {"created_at": 1704067200000, "paid_at": "2024-01-01T00:00:00Z", "amount": 10**13}
    findings, ts, fixed = timestamps.check_timestamps("track", 1704067200123, data, fix=True)
    assert [f.code for f in findings] == ["CIO002"] * 3
    assert ts == 1704067200
    assert fixed == {"created_at": 1704067200, "paid_at": "2024-01-01T00:00:00Z", "amount": 10**13}
    assert data["created_at"] == 1704067200000
    assert "'created_at'" in findings[1].detail
    assert findings[0].message == findings[1].message


def test_email_as_id_rule_never_prints_the_id() -> None:
    found = people.email_as_id_finding("track", "jane@example.com")
    assert found is not None
    assert "jane" not in found.message
    assert people.email_as_id_finding("track", "usr_123") is None
    assert people.email_as_id_finding("track", 42) is None
    assert people.email_as_id_finding("track", "team@work") is None  # no TLD: not an address


def test_missing_email_rule() -> None:
    assert people.missing_email_finding("u1", {"plan": "pro"}) is not None
    assert people.missing_email_finding("u1", {"email": "a@example.com"}) is None
    assert people.missing_email_finding("u1", {"plan": "pro", "_update": True}) is None
    assert people.missing_email_finding("a@example.com", {}) is None  # CIO004's case
    assert people.missing_email_finding("u1", None) is not None


def test_limits_rules() -> None:
    assert id_finding("identify", "x" * 150) is None
    assert id_finding("identify", "é" * 76) is not None  # 152 bytes
    assert attributes_findings("identify", {"a" * 151: 1})[0].detail.startswith("attribute name")
    assert attributes_findings("identify", {"bio": "b" * 1001})[0].message.startswith(
        "CIO014 an attribute value"
    )
    assert attributes_findings("identify", {"tags": ["t" * 100] * 10})[0].code == "CIO014"
    assert attributes_findings("identify", {"bio": "b" * 1000, "n": 10**9}) == []
    too_many = attributes_findings("identify", {f"a{i}": i for i in range(301)})
    assert [f.message[:24] for f in too_many] == ["CIO014 identify() sends "]
    assert event_data_finding("track", {"doc": "d" * 100_001}) is not None
    assert event_data_finding("track", {"doc": ["d" * 1000] * 99}) is None
    assert event_data_finding("track", {"doc": ["d" * 1000] * 101}) is not None


@pytest.mark.parametrize(
    ("kind", "key", "fires"),
    [
        ("app", "f82ad78f695bd32f9d99", True),
        ("app", "20436c6351668b25a74a2c289a639d3f", False),
        ("app", "sa_live_abcdef", False),
        ("track", "20436c6351668b25a74a2c289a639d3f", True),
        ("track", "sa_live_abcdef", True),
        ("track", "f82ad78f695bd32f9d99", False),
        ("track", None, False),
    ],
)
def test_key_shape_rule(kind: str, key: str | None, fires: bool) -> None:
    found = key_shape_finding(kind, key)
    assert (found is not None) == fires
    if found is not None and key is not None:
        assert key not in found.message


def test_safe_name_truncates() -> None:
    assert len(safe_name("a" * 500)) <= 62
    assert safe_name(12345) == "'<int>'"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0004, "under 1 ms"),
        (0.0031, "about 2 ms"),
        (0.212, "about 200 ms"),
        (0.41, "about 500 ms"),
        (0.8, "about 1000 ms"),
        (12.0, "about 10000 ms"),
    ],
)
def test_rounded_ms(seconds: float, text: str) -> None:
    assert rounded_ms(seconds) == text
