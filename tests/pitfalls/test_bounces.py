"""CIO008 state shared with the webhook receiver, and the send rules."""

from __future__ import annotations

import pytest
from pitfall_helpers import codes

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallEngine, bounces

REQUEST = {"transactional_message_id": 3, "to": "Jane <Jane@Example.com>", "identifiers": {"id": "user-9"}}


def test_record_and_query() -> None:
    assert not bounces.is_bounced("user-9")
    bounces.record_bounce("user-9")
    bounces.record_bounce("jane@example.com")
    assert bounces.is_bounced("user-9")
    assert bounces.is_bounced(" JANE@example.com ")  # addresses compare case-insensitively
    assert not bounces.is_bounced("USER-9")  # ids are case-sensitive
    assert not bounces.is_bounced(None)
    bounces.record_bounce("")  # ignored
    assert not bounces.is_bounced("")


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounces, "MAX_BOUNCED", 100)
    for i in range(250):
        bounces.record_bounce(f"user-{i}")
    assert len(bounces._bounced) == 100
    assert not bounces.is_bounced("user-0")  # the oldest are forgotten first
    assert bounces.is_bounced("user-249")


def test_only_hashes_are_stored() -> None:
    bounces.record_bounce("jane@example.com")
    (digest,) = bounces._bounced
    assert isinstance(digest, bytes)
    assert len(digest) == 8
    assert b"jane" not in digest


def test_receiver_registration() -> None:
    assert not bounces.has_receiver()
    bounces.register_receiver()
    bounces.register_receiver()
    bounces.unregister_receiver()
    assert bounces.has_receiver()
    bounces.unregister_receiver()
    bounces.unregister_receiver()  # never below zero
    assert not bounces.has_receiver()


def test_first_email_send_without_receiver_warns_once(engine: PitfallEngine) -> None:
    assert codes(engine, Call("send_email", data=REQUEST)) == ["CIO008"]
    assert codes(engine, Call("send_email", data=REQUEST)) == []
    assert codes(engine, Call("send_push", data={"identifiers": {"id": "u"}})) == []


def test_send_to_bounced_person(engine: PitfallEngine) -> None:
    bounces.register_receiver()
    bounces.record_bounce("jane@example.com")  # the receiver saw the address bounce
    for method in ("send_email", "send_sms"):
        found, _ = engine.check_call(Call(method, data=REQUEST))
        assert [f.code for f in found] == ["CIO008"]
        assert "jane" not in found[0].message.lower()
    other = {"transactional_message_id": 3, "to": "bob@example.com", "identifiers": {"id": "user-1"}}
    assert codes(engine, Call("send_email", data=other)) == []
    bounces.record_bounce("user-1")  # by customer id
    assert codes(engine, Call("send_email", data=other)) == ["CIO008"]


class _SendEmailRequest:
    """Shaped like the SDK's request objects (``_to_dict``) without importing the SDK."""

    def _to_dict(self) -> dict[str, object]:
        return {"to": "jane@example.com", "identifiers": {"email": "jane@example.com"}}


def test_sdk_request_objects(engine: PitfallEngine) -> None:
    bounces.register_receiver()
    bounces.record_bounce("jane@example.com")
    assert codes(engine, Call("send_email", data=_SendEmailRequest())) == ["CIO008"]
    assert bounces.request_identifiers(object()) == []
