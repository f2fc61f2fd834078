"""Realistic correct code that must not fire, and a whole correct session with zero findings."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pitfall_helpers import codes, identify

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallEngine, bounces, declare_events


@pytest.mark.parametrize(
    "name",
    [
        "checkout_v2_completed",
        "oauth2_connected",
        "step_3_completed",
        "top_10_viewed",
        "black_friday_2024_viewed",
        "x86_64_build_finished",
        "s3_upload_finished",
        "product_viewed",
    ],
)
def test_stable_names_do_not_fire(engine: PitfallEngine, name: str) -> None:
    identify(engine, "user-1", email="jane@example.com")
    assert codes(engine, Call("track", customer_id="user-1", name=name, data={})) == []


def test_numeric_database_ids(engine: PitfallEngine) -> None:
    assert identify(engine, 1234567, email="jane@example.com") == []
    assert codes(engine, Call("track", customer_id=1234567, name="order_completed", data={})) == []
    # The SDK puts str(id) in the URL: 42 and "42" are the same person.
    assert identify(engine, 42, email="bob@example.com") == []
    assert codes(engine, Call("track", customer_id="42", name="order_completed", data={})) == []


def test_update_identify_needs_no_email(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", plan="pro", _update=True) == []


def test_datetimes_are_fine(engine: PitfallEngine) -> None:
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert identify(engine, "user-1", email="jane@example.com", created_at=now, trial_ends_at=now) == []
    call = Call("track", "user-1", "trial_started", data={"ends_at": now}, timestamp=now)
    assert codes(engine, call) == []


def test_email_as_attribute_and_in_data(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", email="jane@example.com", backup_email="j@example.org") == []
    call = Call("track", "user-1", "invite_sent", data={"invitee_email": "bob@example.com"})
    assert codes(engine, call) == []


def test_merge_by_email(engine: PitfallEngine) -> None:
    extra = {
        "primary_id_type": "id",
        "primary_id": "user-1",
        "secondary_id_type": "email",
        "secondary_id": "jane@example.com",
    }
    assert codes(engine, Call("merge_customers", extra=extra)) == []
    extra["secondary_id_type"] = "id"
    assert codes(engine, Call("merge_customers", extra=extra)) == ["CIO004"]


def test_non_timestamp_numbers(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    data = {"amount_cents": 120_000_000_000, "order_total": 1e12, "seat_count": 3}
    assert codes(engine, Call("track", "user-1", "order_completed", data=data)) == []


def test_big_but_legal_payloads(engine: PitfallEngine) -> None:
    attrs = {f"attr_{i}": "x" * 1000 for i in range(299)}
    assert identify(engine, "user-1", email="jane@example.com", **attrs) == []
    data = {"body": "y" * 99_000}
    assert codes(engine, Call("track", "user-1", "doc_saved", data=data)) == []


def test_anonymous_events_need_no_identify(engine: PitfallEngine) -> None:
    call = Call("track_anonymous", customer_id=None, name="landing_viewed", data={})
    assert codes(engine, call) == []


def test_correct_session_has_zero_findings(engine: PitfallEngine) -> None:
    """A realistic day of correct calls: taxonomy, identify, events, pages, devices, sends, batch."""
    declare_events(
        {
            "signed_up": {"method": str, "source": str | None},
            "plan_changed": {"from": str, "to": str, "mrr": float},
            "checkout_completed": {"order_id": str, "total": float, "items": int},
        },
        identify={"email": str, "plan": str | None},
    )
    bounces.register_receiver()
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert engine.check_client("track", key="f82ad78f695bd32f9d99", site_id="a1b2c3d4e5f6a7b8c9d0") == []
    assert engine.check_client("app", key="20436c6351668b25a74a2c289a639d3f") == []
    calls = []
    for i in range(1, 51):
        cid = f"usr_{i:04d}"
        calls += [
            Call(
                "identify",
                cid,
                data={"email": f"user{i}@example.com", "created_at": 1714564800, "plan": "free"},
            ),
            Call("track", cid, "signed_up", data={"method": "google"}, timestamp=now),
            Call("pageview", cid, "/pricing", data={"referrer": "/"}),
            Call("track", cid, "plan_changed", data={"from": "free", "to": "pro", "mrr": 49}),
            Call("identify", cid, data={"plan": "pro", "_update": True}),
            Call(
                "track", cid, "checkout_completed", data={"order_id": f"ord_{i}", "total": 49.0, "items": 1}
            ),
            Call("add_device", cid, extra={"device_id": "tok", "platform": "ios"}),
            Call(
                "send_email",
                data={
                    "transactional_message_id": 7,
                    "to": f"user{i}@example.com",
                    "identifiers": {"id": cid},
                },
            ),
        ]
    calls.append(
        Call(
            "batch",
            extra={
                "operations": [
                    {
                        "type": "person",
                        "identifiers": {"id": "usr_0001"},
                        "action": "event",
                        "name": "signed_up",
                        "attributes": {"method": "email"},
                    },
                    {
                        "type": "person",
                        "identifiers": {"email": "new@example.com"},
                        "action": "identify",
                        "attributes": {"plan": "free"},
                    },
                ]
            },
        )
    )
    found = [(call.method, code) for call in calls for code in codes(engine, call)]
    assert found == []
    assert engine.check_response("track", 200) == []
    assert engine.check_queue(10, 10_000) == []
