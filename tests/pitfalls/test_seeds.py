"""The twelve seed pitfalls (plus CIO013/CIO014): each WRONG example fires exactly its code, each
CORRECT example fires nothing. Calls are built as the SDK binds them."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from pitfall_helpers import FakeClock, codes, identify

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallConfig, PitfallEngine, bounces, declare_events
from cioguard.scope import request_scope

TRACK_KEY = "f82ad78f695bd32f9d99"  # 20 hex: the Track key shape
APP_KEY = "20436c6351668b25a74a2c289a639d3f"  # 32 hex: the App key shape


def test_cio001_track_key_given_to_api_client(engine: PitfallEngine) -> None:
    assert [f.code for f in engine.check_client("app", key=TRACK_KEY)] == ["CIO001"]
    assert [f.code for f in engine.check_response("app", 401)] == ["CIO001"]
    assert [f.code for f in engine.check_client("track", key=APP_KEY, site_id=TRACK_KEY)] == ["CIO001"]


def test_cio001_correct_keys(engine: PitfallEngine) -> None:
    assert engine.check_client("app", key=APP_KEY) == []
    assert engine.check_client("track", key=TRACK_KEY, site_id="a1b2c3d4e5f6a7b8c9d0") == []
    assert engine.check_response("app", 200) == []


def test_cio002_milliseconds(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", email="jane@example.com", created_at=1704067200000) == ["CIO002"]


def test_cio002_seconds(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", email="jane@example.com", created_at=1704067200) == []


def test_cio003_track_before_identify(engine: PitfallEngine) -> None:
    assert codes(engine, Call("track", customer_id="new-user", name="signed_up", data={})) == ["CIO003"]


def test_cio003_identify_first(engine: PitfallEngine) -> None:
    assert identify(engine, "new-user", email="new@example.com") == []
    assert codes(engine, Call("track", customer_id="new-user", name="signed_up", data={})) == []


def test_cio003_not_for_an_event_addressed_by_the_email_a_person_was_identified_with(
    engine: PitfallEngine,
) -> None:
    assert identify(engine, "42", email="ada@example.com") == []
    found = codes(engine, Call("track", customer_id="ada@example.com", name="signed_up", data={}))
    assert "CIO003" not in found  # (CIO004 may say an email is not a stable id)


def test_cio004_email_as_id(engine: PitfallEngine) -> None:
    assert identify(engine, "jane@example.com", email="jane@example.com") == ["CIO004"]


def test_cio004_database_id(engine: PitfallEngine) -> None:
    assert identify(engine, "usr_abc123", email="jane@example.com") == []


def test_cio005_missing_email(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", first_name="Jane", plan="pro") == ["CIO005"]


def test_cio005_with_email(engine: PitfallEngine) -> None:
    assert identify(engine, "user-1", email="jane@example.com", first_name="Jane", plan="pro") == []


def test_cio006_dynamic_name(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    assert codes(engine, Call("track", customer_id="user-1", name="viewed_SKU-12345", data={})) == ["CIO006"]


def test_cio006_static_name(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    call = Call("track", customer_id="user-1", name="product_viewed", data={"product_id": "SKU-12345"})
    assert codes(engine, call) == []


def test_cio007_blocking_in_request(engine: PitfallEngine) -> None:
    with request_scope(method="POST", route="/api/action"):
        findings = engine.check_blocking("track", 0.2)
    assert [f.code for f in findings] == ["CIO007"]
    assert findings[0].detail == "blocked about 200 ms in POST /api/action"
    assert "ms" not in findings[0].message  # constant text: shown once per line


def test_cio007_blocking_on_event_loop(engine: PitfallEngine) -> None:
    async def handler() -> list[str]:
        return [f.code for f in engine.check_blocking("send_email", 0.05)]

    assert asyncio.run(handler()) == ["CIO007"]


def test_cio007_not_in_request(engine: PitfallEngine) -> None:
    # A background worker may block: no request, no loop.
    assert engine.check_blocking("track", 0.2) == []


def test_cio008_no_bounce_handling(engine: PitfallEngine) -> None:
    request = {"transactional_message_id": 3, "to": "jane@example.com", "identifiers": {"id": "user-1"}}
    assert codes(engine, Call("send_email", data=request)) == ["CIO008"]


def test_cio008_receiver_registered(engine: PitfallEngine) -> None:
    bounces.register_receiver()
    request = {"transactional_message_id": 3, "to": "jane@example.com", "identifiers": {"id": "user-1"}}
    assert codes(engine, Call("send_email", data=request)) == []


def test_cio009_client_per_request(engine: PitfallEngine) -> None:
    with request_scope(method="POST", route="/track") as scope:
        # The first client, built lazily in a request (an @lru_cache factory), is how it should be.
        first = engine.check_client("track", key=TRACK_KEY, site_id="a1b2c3d4e5f6a7b8c9d0")
    assert first == []
    with request_scope(method="POST", route="/track") as scope:
        findings = engine.check_client("track", key=TRACK_KEY, site_id="a1b2c3d4e5f6a7b8c9d0")
    assert [f.code for f in findings] == ["CIO009"]
    assert "during a web request" in findings[0].detail
    assert scope.clients_built == 0  # counted by the instrumentation, not by the rule


def test_cio009_singleton(engine: PitfallEngine) -> None:
    # Built once at startup (outside any request), then only used inside requests.
    assert engine.check_client("track", key=TRACK_KEY, site_id="a1b2c3d4e5f6a7b8c9d0") == []
    with request_scope(method="POST", route="/track") as scope:
        assert codes(engine, Call("identify", "user-1", data={"email": "jane@example.com"})) == []
    assert scope.clients_built == 0


def test_cio010_inconsistent_names(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    for name in ("UserSignedUp", "user-signed-up", "user signed up"):
        assert codes(engine, Call("track", customer_id="user-1", name=name, data={})) == ["CIO010"], name


def test_cio010_snake_case(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    assert codes(engine, Call("track", customer_id="user-1", name="user_signed_up", data={})) == []


def test_cio011_429(engine: PitfallEngine) -> None:
    assert [f.code for f in engine.check_response("track", 429)] == ["CIO011"]


def test_cio011_blasting_in_blocking_mode(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(rate_limit=100.0, track_before_identify=False), clock=clock)
    found: list[str] = []
    for i in range(5 * 1000):  # 1000 identify calls per second for 5 s
        clock.advance(0.001)
        found += codes(engine, Call("identify", f"user-{i}", data={"email": "a@example.com"}), "blocking")
    assert found == ["CIO011"]


def test_cio011_throttled_import(clock: FakeClock) -> None:
    engine = PitfallEngine(PitfallConfig(rate_limit=100.0), clock=clock)
    found: list[str] = []
    for i in range(5 * 50):  # 50 per second
        clock.advance(0.02)
        found += codes(engine, Call("identify", f"user-{i}", data={"email": "a@example.com"}), "blocking")
    assert found == []


def test_cio012_pii_in_name(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    assert codes(engine, Call("track", customer_id="user-1", name="jane@example.com", data={})) == ["CIO012"]


def test_cio012_pii_in_data(engine: PitfallEngine) -> None:
    identify(engine, "user-1", email="jane@example.com")
    call = Call("track", customer_id="user-1", name="email_sent", data={"recipient": "jane@example.com"})
    assert codes(engine, call) == []


class SignedUp(TypedDict):
    method: str


def test_cio013_outside_taxonomy(engine: PitfallEngine) -> None:
    declare_events({"signed_up": SignedUp})
    identify(engine, "user-1", email="jane@example.com")
    call = Call("track", customer_id="user-1", name="signed_upp", data={"method": "google"})
    assert codes(engine, call) == ["CIO013"]


def test_cio013_declared_event(engine: PitfallEngine) -> None:
    declare_events({"signed_up": SignedUp})
    identify(engine, "user-1", email="jane@example.com")
    call = Call("track", customer_id="user-1", name="signed_up", data={"method": "google"})
    assert codes(engine, call) == []


def test_cio014_id_too_long(engine: PitfallEngine) -> None:
    assert identify(engine, "u" * 151, email="jane@example.com") == ["CIO014"]


def test_cio014_id_at_limit(engine: PitfallEngine) -> None:
    assert identify(engine, "u" * 150, email="jane@example.com") == []


def test_cio002_for_a_devices_last_used_in_milliseconds(engine: PitfallEngine) -> None:
    call = Call("add_device", customer_id="u1", data={"last_used": 1_704_067_200_000})
    assert codes(engine, call) == ["CIO002"]
    assert codes(engine, Call("add_device", customer_id="u1", data={"last_used": 1_704_067_200})) == []


def test_a_batch_entrys_finding_says_it_is_a_batch_entry(engine: PitfallEngine) -> None:
    entry = {"type": "person", "action": "event", "identifiers": {"id": "u1"}, "name": "x"}
    call = Call("batch", data=[{**entry, "timestamp": 1_704_067_200_000}])
    (found,) = [f for f in engine.check_call(call, mode="background")[0] if f.code == "CIO002"]
    assert "a batch() entry (track)" in found.message
