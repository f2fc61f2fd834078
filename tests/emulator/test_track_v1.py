"""The real customerio SDK (unmodified) against the emulator over HTTPS: every Track v1 call."""

from __future__ import annotations

import json

import pytest
from customerio import CustomerIOException

from cioguard.testing import FakeCustomerIO

from .conftest import Raw


def test_identify_and_track_update_people_and_events(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    assert cio.identify("u1", email="U1@Example.com", plan="pro").status_code == 200
    cio.track(
        "u1", "signed_up", data={"source": "ads"}, id="01HZX0000000000000000000AA", timestamp=1700000000
    )
    cio.pageview("u1", "/pricing", referrer="google")
    cio.backfill("u1", "imported", 1600000000, legacy=True)

    person = fake.person("u1@example.com")
    assert person is not None
    assert (person.id, person.email, person.attributes["plan"]) == ("u1", "U1@Example.com", "pro")
    assert fake.person(f"cio_{person.cio_id}") is person
    assert fake.person(person.cio_id) is person
    assert [(e.name, e.type, e.data, e.timestamp) for e in fake.events] == [
        ("signed_up", "event", {"source": "ads"}, 1700000000),
        ("/pricing", "page", {"referrer": "google"}, None),
        ("imported", "event", {"legacy": True}, 1600000000),
    ]
    assert {e.person for e in fake.events} == {"u1"}
    assert all(e.via == "v1" for e in fake.events)


def test_email_shaped_path_is_an_email_and_cio_prefix_is_a_cio_id(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    cio.identify("a+b@x.com", name="A")  # the SDK escapes this as a%2Bb%40x.com
    person = fake.person("A+B@X.COM")
    assert person is not None
    assert (person.id, person.email, person.key) == (None, "a+b@x.com", "a+b@x.com")
    cio.identify(f"cio_{person.cio_id}", name="B")  # `id=` would collide with identify's parameter
    cio.send_request("PUT", f"{cio.base_url}/customers/cio_{person.cio_id}", {"id": "42"})
    assert fake.person("42") is person
    assert person.attributes == {"name": "B", "id": "42"}
    assert fake.people.keys() == {"a+b@x.com"}
    cio.identify("cio_unknown", name="nobody")  # an unknown cio_id never creates a person
    assert len(fake.people) == 1
    assert fake.stats()["unresolved"] == 1


def test_track_anonymous_delete_devices_suppress_merge(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    cio.track_anonymous("anon-1", "viewed", data={"p": 1})
    cio.identify("u1", email="u1@x.com")
    cio.identify("u2", color="red")
    cio.add_device("u1", "tok-1", "ios", last_used=1700000000, attributes={"app_version": "1.2"})
    cio.add_device("u1", "tok-2", "android")
    cio.delete_device("u1", "tok-2")
    cio.suppress("u2")
    assert fake.suppressions == {"u2"}
    cio.unsuppress("u2")
    cio.merge_customers("id", "u1", "id", "u2")
    cio.delete("u1")

    anonymous = fake.events[0]
    assert (anonymous.person, anonymous.anonymous_id, anonymous.name) == (None, "anon-1", "viewed")
    assert fake.suppressions == set()
    assert [(m.primary, m.secondary, m.applied) for m in fake.merges] == [({"id": "u1"}, {"id": "u2"}, True)]
    assert fake.people.keys() == {"u1"}  # the secondary is gone
    u1 = fake.people["u1"]
    assert u1.deleted
    assert u1.devices == {}
    cio.identify("u1", plan="free")  # a later identify recreates the person
    assert not fake.people["u1"].deleted
    assert fake.people["u1"].attributes == {"plan": "free"}


def test_devices_keep_attributes_and_merge_prefers_primary(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    cio.identify("p", plan="pro")
    cio.identify("s", plan="free", city="Oslo")
    cio.add_device("s", "tok", "android", attributes={"device_os": "14"}, push_enabled=True)
    cio.track("s", "clicked")
    cio.merge_customers("id", "p", "email", "nobody@x.com")  # secondary missing: recorded, not applied
    cio.merge_customers("id", "p", "id", "s")
    person = fake.people["p"]
    assert person.attributes == {"plan": "pro", "city": "Oslo"}
    assert person.devices["tok"].attributes == {"device_os": "14", "push_enabled": True}
    assert [e.person for e in fake.events] == ["p"]
    assert [m.applied for m in fake.merges] == [False, True]


def test_event_id_dedupe(fake: FakeCustomerIO) -> None:
    cio = fake.client()
    for _ in range(2):
        cio.track("u1", "paid", data={"amount": 5}, id="01HZX0000000000000000000BB")
    cio.track_anonymous("a", "paid", id="01HZX0000000000000000000BB")  # ids are global
    cio.track("u1", "paid", data={"amount": 5})  # no id: never deduplicated
    assert [e.id for e in fake.events] == ["01HZX0000000000000000000BB", None]
    assert fake.duplicate_events == 2
    assert fake.stats()["events"] == 4  # accepted requests, before deduplication


def test_wrong_credentials_get_401_and_leave_no_state(fake: FakeCustomerIO) -> None:
    with pytest.raises(CustomerIOException, match=r"^401"):
        fake.client(api_key="wrong").track("u1", "x")
    with pytest.raises(CustomerIOException, match=r"^401"):
        fake.client(site_id="other-site").identify("u1")
    assert fake.events == []
    assert fake.people == {}
    assert [(r.status, r.auth_ok) for r in fake.requests] == [(401, False), (401, False)]


def test_log_never_stores_the_authorization_value(fake: FakeCustomerIO) -> None:
    fake.client().identify("u1", a=1)
    (request,) = fake.requests
    assert (request.method, request.path, request.status, request.auth_ok) == (
        "PUT",
        "/api/v1/customers/u1",
        200,
        True,
    )
    assert json.loads(request.body) == {"a": 1}
    assert "authorization" not in {name.lower() for name in request.headers}
    assert "track-key" not in repr(request)
    assert request.headers["User-Agent"].startswith("Customer.io Python Client/")


def test_v1_validation_errors(raw: Raw) -> None:
    cases = [
        ("POST", "/api/v1/customers/u1/events", {"data": {}}, "event name is required"),
        ("POST", "/api/v1/customers/u1/events", {"name": "x" * 101}, "longer than 100 bytes"),
        ("POST", "/api/v1/customers/u1/events", {"name": "x", "type": "click"}, "type must be"),
        ("PUT", "/api/v1/customers/u1/devices", {"device": {"id": "t"}}, "platform"),
        ("PUT", "/api/v1/customers/u1/devices", {}, "device is required"),
        (
            "POST",
            "/api/v1/merge_customers",
            {"primary": {"id": "a", "email": "b"}, "secondary": {"id": "c"}},
            "primary",
        ),
        ("PUT", "/api/v1/customers/" + "x" * 151, {}, "150 bytes"),
    ]
    for method, path, body, message in cases:
        response = raw(method, path, json=body)
        assert response.status_code == 400, (path, body)
        (error,) = response.json()["meta"]["errors"]
        assert message in error
    malformed = raw(
        "PUT", "/api/v1/customers/u1", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "malformed" in malformed.json()["meta"]["errors"][0]
    assert raw("PUT", "/api/v1/customers/u1", json=[1]).status_code == 400
    assert raw("GET", "/api/v1/nothing").status_code == 404
    assert raw.fake.people == {}


def test_region_endpoint_and_keep_alive(raw: Raw) -> None:
    response = raw("GET", "/api/v1/accounts/region")
    assert response.status_code == 200
    assert response.json()["url"] == raw.fake.url
    assert response.json()["data_center"] == "us"
    assert raw("GET", "/api/v1/accounts/region", auth=("site-id", "nope")).status_code == 401
    # HTTP/1.1 keep-alive: requests reuses one connection for all of these
    for _ in range(5):
        raw("PUT", "/api/v1/customers/u1", json={"n": 1})
    assert raw.fake.stats()["by_status"][200] == 6
    assert raw.fake.stats()["connections"] == 1
