"""App API (transactional) through the real customerio.APIClient over HTTPS, and raw over HTTP."""

from __future__ import annotations

import base64

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

from cioguard.testing import FakeCustomerIO

from .conftest import Raw

WALL = 1_800_000_000.0


def test_every_send_kind(fake: FakeCustomerIO) -> None:
    api = fake.api_client()
    ids = {"id": "u1"}
    email = SendEmailRequest(to="u1@x.com", transactional_message_id="welcome", identifiers=ids)
    email.attach("a.txt", "hello")
    answers = [
        api.send_email(email),
        api.send_push(SendPushRequest(transactional_message_id=2, identifiers=ids, device={"token": "t"})),
        api.send_sms(SendSMSRequest(transactional_message_id=3, identifiers=ids, to="+4712345678")),
        api.send_whatsapp(SendWhatsAppRequest(transactional_message_id=4, identifiers=ids, to="+4712345678")),
        api.send_inbox_message(SendInboxMessageRequest(transactional_message_id=5, identifiers=ids)),
        api.send_in_app(SendInAppRequest(transactional_message_id=6, identifiers=ids)),
        api.send_email({"to": "a@x.com", "from": "me@x.com", "subject": "s", "body": "b"}),
    ]
    for answer in answers:
        assert set(answer) == {"delivery_id", "queued_at"}
        assert isinstance(answer["delivery_id"], str)
        assert isinstance(answer["queued_at"], int)
    assert len({a["delivery_id"] for a in answers}) == len(answers)
    deliveries = fake.deliveries
    assert [d.kind for d in deliveries] == [
        "email",
        "push",
        "sms",
        "whatsapp",
        "inbox_message",
        "in_app",
        "email",
    ]
    assert [d.delivery_id for d in deliveries] == [a["delivery_id"] for a in answers]
    assert deliveries[0].payload["attachments"] == {"a.txt": base64.b64encode(b"hello").decode()}
    assert deliveries[1].payload["custom_device"] == {"token": "t"}


def test_track_key_or_wrong_key_on_app_api_is_401(fake: FakeCustomerIO) -> None:
    request = SendEmailRequest(to="u1@x.com", transactional_message_id=1, identifiers={"id": "u1"})
    for key in ("track-key", "wrong"):
        with pytest.raises(CustomerIOException, match=r"^401") as caught:
            fake.api_client(key=key).send_email(request)
        assert '"meta": {"error"' in str(caught.value)
    assert fake.deliveries == []
    assert [r.auth_ok for r in fake.requests] == [False, False]


def test_basic_auth_is_not_accepted_on_app_api(raw: Raw) -> None:
    body = {"to": "a@x.com", "transactional_message_id": 1}
    assert raw("POST", "/v1/send/email", json=body).status_code == 401
    bearer = {"Authorization": "Bearer app-key"}
    assert raw("POST", "/v1/send/email", json=body, auth=None, headers=bearer).status_code == 200
    # and the App key does not open the Track API
    assert raw("PUT", "/api/v1/customers/u1", json={}, auth=None, headers=bearer).status_code == 401
    # odd header bytes are a 401 too, never a dropped connection
    odd = {"Authorization": "Bearer app-k\u00e9y".encode("latin-1")}
    assert raw("POST", "/v1/send/email", json=body, auth=None, headers=odd).status_code == 401
    assert (
        raw("POST", "/api/v2/batch", json={}, auth=None, headers={"Authorization": b"Basic \xff"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("email", {"transactional_message_id": 1}, "to is required"),
        ("email", {"to": "a@x.com"}, "transactional_message_id is required unless"),
        ("email", {"to": ",".join(f"u{i}@x.com" for i in range(16)), "transactional_message_id": 1}, "15"),
        ("push", {"identifiers": {"id": "u1"}}, "transactional_message_id is required"),
        ("push", {"transactional_message_id": 1}, "identifiers is required"),
        ("in_app", {"transactional_message_id": 1, "identifiers": {"id": "u", "email": "e"}}, "exactly one"),
        ("sms", {"transactional_message_id": 1, "identifiers": {"id": "u"}}, "to is required"),
        ("whatsapp", {"transactional_message_id": 1, "identifiers": {"id": "u"}}, "to is required"),
    ],
)
def test_missing_required_fields_are_400(
    raw: Raw, kind: str, payload: dict[str, object], message: str
) -> None:
    response = raw(
        "POST", f"/v1/send/{kind}", json=payload, auth=None, headers={"Authorization": "Bearer app-key"}
    )
    assert response.status_code == 400
    assert message in response.json()["meta"]["error"]
    assert raw.fake.deliveries == []


def test_unknown_kind_and_malformed_body(raw: Raw) -> None:
    bearer = {"Authorization": "Bearer app-key"}
    assert raw("POST", "/v1/send/fax", json={}, auth=None, headers=bearer).status_code == 404
    assert raw("POST", "/v1/send/email", data=b"{", auth=None, headers=bearer).status_code == 400


def test_queued_at_uses_the_injected_wall_clock() -> None:
    with FakeCustomerIO(https=False, wall_clock=lambda: WALL) as fake:
        answer = fake.api_client().send_sms(
            SendSMSRequest(transactional_message_id=1, identifiers={"id": "u"}, to="+1")
        )
    assert answer["queued_at"] == int(WALL)
