"""The same session sent as SDK v1 calls and as hand-written v2 batch entries ends in the same state."""

from __future__ import annotations

from typing import Any

from cioguard.testing import FakeCustomerIO

from .conftest import Raw


def v1_session(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    cio.identify("u1", email="u1@example.com", plan="pro", created_at=1700000000)
    cio.identify("jane@example.com", name="Jane")
    cio.track(
        "u1", "signed_up", data={"source": "ads"}, id="01HZX00000000000000000000A", timestamp=1700000001
    )
    cio.track(
        "u1", "signed_up", data={"source": "ads"}, id="01HZX00000000000000000000A", timestamp=1700000001
    )
    cio.pageview("u1", "/pricing", referrer="google")
    cio.track("jane@example.com", "invited", data={"by": "u1"})
    cio.add_device("u1", "tok-1", "ios", last_used=1700000002, attributes={"app_version": "1.0"})
    cio.add_device("u1", "tok-2", "android")
    cio.delete_device("u1", "tok-2")
    cio.identify("u2", color="red")
    cio.track("u2", "clicked", data={"n": 2})
    cio.suppress("u2")
    cio.unsuppress("u2")
    cio.identify("u3", temp=True)
    cio.delete("u3")
    cio.merge_customers("id", "u1", "id", "u2")


def v2_session(raw: Raw) -> None:
    def p(action: str, ident: dict[str, str], **fields: Any) -> dict[str, Any]:
        return {"type": "person", "action": action, "identifiers": ident, **fields}

    u1, jane, u2, u3 = {"id": "u1"}, {"email": "jane@example.com"}, {"id": "u2"}, {"id": "u3"}
    entries = [
        p("identify", u1, attributes={"email": "u1@example.com", "plan": "pro", "created_at": 1700000000}),
        p("identify", jane, attributes={"name": "Jane"}),
        p(
            "event",
            u1,
            name="signed_up",
            id="01HZX00000000000000000000A",
            timestamp=1700000001,
            attributes={"source": "ads"},
        ),
        p(
            "event",
            u1,
            name="signed_up",
            id="01HZX00000000000000000000A",
            timestamp=1700000001,
            attributes={"source": "ads"},
        ),
        p("page", u1, name="/pricing", attributes={"referrer": "google"}),
        p("event", jane, name="invited", attributes={"by": "u1"}),
        p(
            "add_device",
            u1,
            device={
                "token": "tok-1",
                "platform": "ios",
                "last_used": 1700000002,
                "attributes": {"app_version": "1.0"},
            },
        ),
        p("add_device", u1, device={"token": "tok-2", "platform": "android"}),
        p("delete_device", u1, device={"token": "tok-2"}),
        p("identify", u2, attributes={"color": "red"}),
        p("event", u2, name="clicked", attributes={"n": 2}),
        p("suppress", u2),
        p("unsuppress", u2),
        p("identify", u3, attributes={"temp": True}),
        p("delete", u3),
        {"type": "person", "action": "merge", "primary": {"id": "u1"}, "secondary": {"id": "u2"}},
    ]
    assert raw.batch(entries[:7]).status_code == 200
    assert raw("POST", "/api/v2/entity", json=entries[7]).status_code == 200
    assert raw.batch(entries[8:]).status_code == 200


def test_v1_and_v2_sessions_end_in_the_same_snapshot(fake: FakeCustomerIO, raw: Raw) -> None:
    v1_session(fake)
    v2_session(raw)
    via_v1, via_v2 = fake.snapshot(), raw.fake.snapshot()
    assert via_v1 == via_v2
    # and the shared state is what the session meant
    assert set(via_v1["people"]) == {"u1", "jane@example.com", "u3"}
    u1 = via_v1["people"]["u1"]
    assert u1["attributes"] == {
        "email": "u1@example.com",
        "plan": "pro",
        "created_at": 1700000000,
        "color": "red",
    }
    assert [e["name"] for e in u1["events"]] == ["signed_up", "/pricing", "clicked"]
    assert list(u1["devices"]) == ["tok-1"]
    assert via_v1["people"]["u3"]["deleted"] is True
    assert via_v1["duplicate_events"] == 1
    assert {e.via for e in fake.events} == {"v1"}
    assert {e.via for e in raw.fake.events} == {"v2"}


def test_snapshot_differs_when_sessions_differ(fake: FakeCustomerIO, raw: Raw) -> None:
    fake.client().track("u1", "a", data={"x": 1})
    raw.batch(
        [
            {
                "type": "person",
                "action": "event",
                "identifiers": {"id": "u1"},
                "name": "a",
                "attributes": {"x": 2},
            }
        ]
    )
    assert fake.snapshot() != raw.fake.snapshot()
