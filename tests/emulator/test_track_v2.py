"""Track API v2 (/api/v2/entity and /api/v2/batch): shapes, limits, 207 and 400 answers."""

from __future__ import annotations

import json
from typing import Any

from cioguard.testing import FakeCustomerIO
from cioguard.testing.v2 import BATCH_LIMIT, ENTITY_LIMIT, ENTRY_LIMIT

from .conftest import Raw


def person(action: str, ident: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "type": "person",
        "action": action,
        "identifiers": {"id": "u1"} if ident is None else ident,
        **fields,
    }


def test_sdk_batch_over_https(fake: FakeCustomerIO) -> None:
    response = fake.client().batch(
        [
            person("identify", attributes={"email": "u1@x.com", "plan": "pro"}),
            person("event", name="signed_up", id="E1", timestamp=1700000000, attributes={"a": 1}),
            person("page", name="/home"),
            person("screen", {"email": "U1@x.com"}, name="Home"),
        ]
    )
    assert response.status_code == 200
    assert response.json() == {}
    assert [(e.person, e.type, e.name, e.data, e.via) for e in fake.events] == [
        ("u1", "event", "signed_up", {"a": 1}, "v2"),
        ("u1", "page", "/home", {}, "v2"),
        ("u1", "screen", "Home", {}, "v2"),
    ]
    assert fake.stats()["operations"] == 4


def test_every_person_action(raw: Raw) -> None:
    fake = raw.fake
    entries = [
        person(
            "identify",
            attributes={"plan": "pro"},
            cio_relationships=[{"identifiers": {"object_type_id": "1", "object_id": "acme"}}],
        ),
        person("identify", {"id": "u2"}, attributes={"city": "Oslo"}),
        person("add_device", device={"token": "t1", "platform": "ios", "attributes": {"app_version": "2"}}),
        person("add_device", device={"token": "t2", "platform": "android"}),
        person("delete_device", device={"token": "t2"}),
        person("suppress", {"id": "u2"}),
        person("unsuppress", {"id": "u2"}),
        person(
            "add_relationships",
            cio_relationships=[{"identifiers": {"object_type_id": "1", "object_id": "b"}}],
        ),
        person(
            "delete_relationships",
            cio_relationships=[{"identifiers": {"object_type_id": "1", "object_id": "acme"}}],
        ),
        {"type": "person", "action": "merge", "primary": {"id": "u1"}, "secondary": {"id": "u2"}},
        {
            "type": "object",
            "action": "identify",
            "identifiers": {"object_type_id": "1", "object_id": "acme"},
            "attributes": {"n": 1},
        },
        {"type": "delivery", "action": "event", "identifiers": {"id": "dlv1"}, "name": "opened"},
        person("identify", {"id": "u3"}),
        person("delete", {"id": "u3"}),
    ]
    response = raw.batch(entries)
    assert response.status_code == 200, response.text
    u1 = fake.people["u1"]
    assert u1.attributes == {"plan": "pro", "city": "Oslo"}
    assert list(u1.devices) == ["t1"]
    assert u1.devices["t1"].attributes == {"app_version": "2"}
    assert u1.relationships == [{"identifiers": {"object_type_id": "1", "object_id": "b"}}]
    assert "u2" not in fake.people
    assert fake.people["u3"].deleted
    snapshot = fake.snapshot()
    assert snapshot["objects"] == {"1/acme": {"attributes": {"n": 1}, "deleted": False}}
    assert snapshot["merges"] == [{"primary": {"id": "u1"}, "secondary": {"id": "u2"}}]
    assert fake.stats()["operations"] == len(entries)


def test_entity_endpoint(raw: Raw) -> None:
    assert (
        raw("POST", "/api/v2/entity", json=person("event", name="x", attributes={"k": 1})).status_code == 200
    )
    assert raw.fake.events[0].data == {"k": 1}
    bad = raw("POST", "/api/v2/entity", json=person("event"))
    assert bad.status_code == 400
    assert bad.json() == {"errors": [{"reason": "required", "field": "name", "message": "name is required"}]}
    big = person("identify", attributes={"blob": "x" * ENTITY_LIMIT})
    too_large = raw("POST", "/api/v2/entity", json=big)
    assert too_large.status_code == 413
    assert too_large.json()["errors"][0]["reason"] == "too_large"
    assert raw("POST", "/api/v2/entity", json=big, auth=("site-id", "bad")).status_code == 401
    assert len(raw.fake.events) == 1


def test_207_reports_the_invalid_entries_and_applies_the_rest(raw: Raw) -> None:
    entries = [
        person("event", name="ok-0"),
        person("event", {"id": "u1", "email": "a@x.com"}, name="two-ids"),
        person("event", {}, name="no-ids"),
        {"type": "person", "action": "event", "name": "missing-identifiers"},
        person("event", name="ok-4"),
        person("explode"),
        {
            "type": "person",
            "action": "merge",
            "identifiers": {"id": "u1"},
            "primary": {"id": "a"},
            "secondary": {"id": "b"},
        },
        {"type": "person", "action": "merge", "primary": {"id": "a"}},
        person("add_device", device={"platform": "ios"}),
        person("add_device", device={"token": "t", "platform": "windows"}),
        person("event", name="big", attributes={"blob": "x" * ENTRY_LIMIT}),
        "not an object",
        {"type": "robot", "action": "identify"},
        person("event", name="ok-13", id="E13"),
    ]
    response = raw.batch(entries)
    assert response.status_code == 207
    errors = response.json()["errors"]
    assert [e["batch_index"] for e in errors] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert all(set(e) == {"batch_index", "reason", "field", "message"} for e in errors)
    by_index = {e["batch_index"]: e for e in errors}
    assert by_index[1]["field"] == "identifiers"
    assert by_index[3]["reason"] == "required"
    assert by_index[7]["field"] == "secondary"
    assert by_index[8]["field"] == "device.token"
    assert by_index[10]["reason"] == "too_large"
    assert [e.name for e in raw.fake.events] == ["ok-0", "ok-4", "ok-13"]
    stats = raw.fake.stats()
    assert (stats["operations"], stats["invalid_entries"]) == (3, 11)


def test_entry_limit_is_exactly_32000_bytes(raw: Raw) -> None:
    base = person("identify", attributes={"blob": ""})
    padding = ENTRY_LIMIT - len(json.dumps(base, separators=(",", ":")))
    at_limit = person("identify", attributes={"blob": "x" * padding})
    over = person("identify", {"id": "u2"}, attributes={"blob": "x" * (padding + 1)})
    response = raw.batch([at_limit, over])
    assert response.status_code == 207
    assert [e["batch_index"] for e in response.json()["errors"]] == [1]
    assert set(raw.fake.people) == {"u1"}


def test_batch_request_limit_is_500000_bytes(raw: Raw) -> None:
    entry = person("event", name="x", attributes={"blob": "y" * 20_000})
    entries = [entry] * (BATCH_LIMIT // 20_000)
    body = json.dumps({"batch": entries}).encode()
    assert len(body) >= BATCH_LIMIT
    response = raw("POST", "/api/v2/batch", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["reason"] == "too_large"
    smaller = json.dumps({"batch": entries[:-1]}).encode()
    assert len(smaller) < BATCH_LIMIT
    assert raw("POST", "/api/v2/batch", data=smaller).status_code == 200
    assert len(raw.fake.events) == len(entries) - 1


def test_malformed_batches_are_400(raw: Raw) -> None:
    for body in (b"{", b"[]", b'{"batch": {}}', b'{"batch": []}', b'{"other": [1]}'):
        response = raw("POST", "/api/v2/batch", data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        (error,) = response.json()["errors"]
        assert set(error) == {"reason", "field", "message"}
    assert raw("POST", "/api/v2/nothing", json={}).status_code == 404
    assert raw("GET", "/api/v2/batch").status_code == 404
    assert raw.fake.stats()["operations"] == 0


def test_v2_identify_by_email_then_id_attribute(raw: Raw) -> None:
    raw.batch(
        [
            person("identify", {"email": "A@x.com"}, attributes={"id": "u9"}),
            person("event", {"id": "u9"}, name="x"),
        ]
    )
    (only,) = raw.fake.people.values()
    assert (only.key, only.id, only.email) == ("a@x.com", "u9", "A@x.com")
    assert raw.fake.events[0].person == "a@x.com"
