"""The reporting-webhook receiver, through both its ASGI and its WSGI application."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from web_helpers import SIGNING_KEY, KeepingRecorder, asgi_request, event_body, signed_headers
from werkzeug.test import Client

from cioguard.pitfalls import bounces
from cioguard.webhooks import SignatureError, WebhookEvent, WebhookReceiver, sign, verify

NOW = 1_800_000_000.0

Post = Callable[..., tuple[int, dict[str, Any]]]


class RecordingClient:
    """Stands in for customerio.CustomerIO: keeps the calls the receiver makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def suppress(self, customer_id: str) -> None:
        self.calls.append(("suppress", customer_id, {}))

    def identify(self, id: str, **kwargs: Any) -> None:
        self.calls.append(("identify", id, kwargs))


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_post(kind: str, receiver: WebhookReceiver) -> Post:
    if kind == "asgi":
        app = receiver.asgi_app()

        def post(body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, Any]]:
            response = asgi_request(app, method, "/", body, headers)
            return response.status_code, response.json()

        return post
    wsgi = Client(receiver.wsgi_app())

    def post_wsgi(body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, Any]]:
        response = wsgi.open("/", method=method, data=body, headers=headers)
        return response.status_code, json.loads(response.get_data())

    return post_wsgi


@pytest.fixture
def client() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def seen() -> list[WebhookEvent]:
    return []


@pytest.fixture
def receiver(client: RecordingClient, seen: list[WebhookEvent]) -> WebhookReceiver:
    return WebhookReceiver(SIGNING_KEY, client=client, on_event=seen.append, clock=lambda: NOW)


@pytest.fixture
def post(kind: str, receiver: WebhookReceiver) -> Post:
    return make_post(kind, receiver)


# -- signatures ---------------------------------------------------------------------------------


def test_sign_matches_an_independent_openssl_vector() -> None:
    # printf 'v0:1700000000:{"event_id":"01J","metric":"sent"}' | openssl dgst -sha256 -hmac whsec-test
    body = b'{"event_id":"01J","metric":"sent"}'
    expected = "6cef2142056735a845b190e2a8391db91bb356b2a171878bdc0e94f49730ca96"
    assert sign("whsec-test", 1_700_000_000, body) == expected
    assert sign(b"whsec-test", "1700000000", body) == expected


def test_verify_accepts_uppercase_hex_and_rejects_each_defect() -> None:
    body = b"{}"
    good = hmac.new(b"k", b"v0:100:{}", hashlib.sha256).hexdigest()
    assert verify("k", "100", good.upper(), body, now=100.0) == 100
    cases = [
        (None, good, "missing_signature"),
        ("100", "", "missing_signature"),
        ("1e2", good, "timestamp"),
        ("-100", good, "timestamp"),
        ("\uff11\uff10\uff10", good, "timestamp"),  # full-width digits: str.isdigit() alone would accept them
        ("100", good[:-1] + "0" if good[-1] != "0" else good[:-1] + "1", "signature"),
        ("100", "zz\u00e9", "signature"),
    ]
    for timestamp, signature, reason in cases:
        with pytest.raises(SignatureError) as info:
            verify("k", timestamp, signature, body, now=100.0)
        assert info.value.reason == reason
    with pytest.raises(SignatureError, match="300 s") as stale:
        verify("k", "100", good, body, now=401.0)
    assert stale.value.reason == "stale"
    assert verify("k", "100", good, body, now=400.0) == 100  # the window edge is inclusive


# -- the request matrix, through both adapters --------------------------------------------------


def test_valid_event_is_counted_and_handed_to_the_callback(
    post: Post, recorder: KeepingRecorder, seen: list[WebhookEvent]
) -> None:
    body = event_body(metric="opened")
    status, answer = post(body, signed_headers(body, timestamp=NOW))
    assert (status, answer) == (200, {"status": "ok"})
    assert recorder.events == ["opened"]
    assert recorder.rejected == []
    assert [(e.event_id, e.metric, e.object_type, e.data["customer_id"]) for e in seen] == [
        ("01HZXEVENT0001", "opened", "email", "user-42")
    ]


def test_unknown_metric_is_counted_as_other(post: Post, recorder: KeepingRecorder) -> None:
    body = event_body(metric="user_typed_metric_9f8e")
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert recorder.events == ["other"]


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda h, b: {**h, "X-CIO-Signature": sign("wrong-key", int(NOW), b)}, 401, "signature"),
        (lambda h, b: {k: v for k, v in h.items() if k != "X-CIO-Signature"}, 401, "missing_signature"),
        (lambda h, b: {k: v for k, v in h.items() if k != "X-CIO-Timestamp"}, 401, "missing_signature"),
        (lambda h, b: {**h, "X-CIO-Timestamp": "yesterday"}, 401, "timestamp"),
        (lambda h, b: {**h, "X-CIO-Signature": "not-hex"}, 401, "signature"),
        (lambda h, b: {**h, "Content-Type": "text/plain"}, 415, "content_type"),
        (lambda h, b: {**h, "Content-Type": "application/x-www-form-urlencoded"}, 415, "content_type"),
    ],
    ids=["forged", "no-signature", "no-timestamp", "bad-timestamp", "not-hex", "text", "form"],
)
def test_rejections(
    post: Post,
    recorder: KeepingRecorder,
    seen: list[WebhookEvent],
    mutate: Callable[[dict[str, str], bytes], dict[str, str]],
    status: int,
    reason: str,
) -> None:
    body = event_body()
    code, answer = post(body, mutate(signed_headers(body, timestamp=NOW), body))
    assert code == status
    assert "error" in answer
    assert recorder.rejected == [reason]
    assert recorder.events == []
    assert seen == []


def test_stale_and_future_timestamps_are_rejected(post: Post, recorder: KeepingRecorder) -> None:
    body = event_body()
    assert post(body, signed_headers(body, timestamp=NOW - 301))[0] == 401
    assert post(body, signed_headers(body, timestamp=NOW + 301))[0] == 401
    assert post(body, signed_headers(body, timestamp=NOW - 299))[0] == 200
    assert recorder.rejected == ["stale", "stale"]


def test_tampered_body_fails_the_signature(post: Post, recorder: KeepingRecorder) -> None:
    headers = signed_headers(event_body(metric="delivered"), timestamp=NOW)
    assert post(event_body(metric="bounced"), headers)[0] == 401
    assert recorder.rejected == ["signature"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'{"metric": "sent"}', b'{"event_id": "", "metric": "sent"}',
     b'{"event_id": "e", "metric": 5}', b'{"event_id": "e", "metric": "sent", "data": []}', b"\xff\xfe"],
    ids=["syntax", "array", "no-id", "empty-id", "metric-type", "data-type", "bad-utf8"],
)  # fmt: skip
def test_malformed_json_is_400(post: Post, recorder: KeepingRecorder, body: bytes) -> None:
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 400
    assert recorder.rejected == ["malformed"]


def test_get_is_405(post: Post, recorder: KeepingRecorder) -> None:
    assert post(b"", {}, method="GET")[0] == 405
    assert recorder.rejected == ["method"]


def test_replayed_and_redelivered_events_act_once(
    post: Post, recorder: KeepingRecorder, seen: list[WebhookEvent]
) -> None:
    body = event_body(event_id="01HZXREPLAY")
    headers = signed_headers(body, timestamp=NOW)
    assert post(body, headers) == (200, {"status": "ok"})
    # The same request replayed, then a retry by Customer.io: new timestamp, same event_id.
    assert post(body, headers) == (200, {"status": "duplicate"})
    assert post(body, signed_headers(body, timestamp=NOW - 60)) == (200, {"status": "duplicate"})
    assert len(seen) == 1
    assert recorder.events == ["delivered"]


def test_replay_outside_the_window_is_rejected_even_for_a_known_event(kind: str) -> None:
    clock = [NOW]
    receiver = WebhookReceiver(SIGNING_KEY, on_bounce="none", clock=lambda: clock[0])
    post = make_post(kind, receiver)
    body = event_body()
    headers = signed_headers(body, timestamp=NOW)
    assert post(body, headers)[0] == 200
    clock[0] = NOW + 3600
    assert post(body, headers)[0] == 401


def test_oversize_declared_length_is_413_before_reading(post: Post, recorder: KeepingRecorder) -> None:
    body = event_body(padding="x" * 1_000_001)
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 413
    assert recorder.rejected == ["oversize"]


def test_body_at_the_limit_is_accepted(kind: str, recorder: KeepingRecorder) -> None:
    body = event_body()
    receiver = WebhookReceiver(SIGNING_KEY, max_body=len(body), on_bounce="none", clock=lambda: NOW)
    post = make_post(kind, receiver)
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    small = WebhookReceiver(SIGNING_KEY, max_body=len(body) - 1, on_bounce="none", clock=lambda: NOW)
    assert make_post(kind, small)(body, signed_headers(body, timestamp=NOW))[0] == 413
    assert recorder.rejected == ["oversize"]


def test_callback_exception_is_logged_and_still_200(
    kind: str, recorder: KeepingRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: WebhookEvent) -> None:
        raise RuntimeError("user bug")

    receiver = WebhookReceiver(SIGNING_KEY, on_event=explode, on_bounce="none", clock=lambda: NOW)
    body = event_body()
    with caplog.at_level(logging.ERROR, logger="cioguard.webhooks"):
        assert make_post(kind, receiver)(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert "on_event callback raised" in caplog.text
    assert "user bug" in caplog.text
    assert recorder.events == ["delivered"]


# -- bounces ------------------------------------------------------------------------------------


def test_bounce_suppresses_by_default(post: Post, client: RecordingClient) -> None:
    body = event_body(event_id="b1", metric="bounced")
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    spam = event_body(event_id="b2", metric="spammed")
    assert post(spam, signed_headers(spam, timestamp=NOW))[0] == 200
    assert client.calls == [("suppress", "user-42", {}), ("suppress", "user-42", {})]


@pytest.mark.parametrize(
    ("action", "expected"),
    [("unsubscribe", [("identify", "user-42", {"unsubscribed": True})]), ("none", [])],
)
def test_bounce_actions(kind: str, action: str, expected: list[Any]) -> None:
    client = RecordingClient()
    receiver = WebhookReceiver(SIGNING_KEY, on_bounce=action, client=client, clock=lambda: NOW)
    body = event_body(metric="bounced")
    assert make_post(kind, receiver)(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert client.calls == expected


def test_only_email_bounces_act_and_identifiers_fall_back(post: Post, client: RecordingClient) -> None:
    sms = event_body(event_id="s1", metric="bounced", object_type="sms")
    by_cio_id = event_body(event_id="c1", metric="bounced", data={"identifiers": {"cio_id": "a1b2"}})
    nobody = event_body(event_id="n1", metric="bounced", data={})
    for body in (sms, by_cio_id, nobody):
        assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert client.calls == [("suppress", "cio_a1b2", {})]


def test_receiver_tells_the_pitfall_rules_about_bounces(post: Post) -> None:
    # The `receiver` fixture behind `post` registered itself on creation.
    assert bounces.has_receiver()
    body = event_body(
        metric="spammed",
        data={"customer_id": "user-9", "identifiers": {"id": "user-9"}, "recipient": "Nine@Example.com"},
    )
    assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert bounces.is_bounced("user-9")
    assert bounces.is_bounced("nine@example.com")
    assert not bounces.is_bounced("user-42")


def test_failing_client_still_answers_200(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RecordingClient):
        def suppress(self, customer_id: str) -> None:
            raise ConnectionError("queue closed")

    receiver = WebhookReceiver(SIGNING_KEY, client=Broken(), clock=lambda: NOW)
    body = event_body(metric="bounced")
    with caplog.at_level(logging.ERROR, logger="cioguard.webhooks"):
        assert make_post(kind, receiver)(body, signed_headers(body, timestamp=NOW))[0] == 200
    assert "bounce handling failed" in caplog.text


# -- dedup memory and concurrency ----------------------------------------------------------------


def test_dedup_memory_is_bounded() -> None:
    seen: list[str] = []
    receiver = WebhookReceiver(
        SIGNING_KEY,
        dedup_size=2,
        on_bounce="none",
        on_event=lambda e: seen.append(e.event_id),
        clock=lambda: NOW,
    )
    post = make_post("wsgi", receiver)
    for event_id in ("a", "b", "c", "a", "c"):
        body = event_body(event_id=event_id)
        assert post(body, signed_headers(body, timestamp=NOW))[0] == 200
    # "a" was evicted by "c" and so acts again; "c" is still remembered.
    assert seen == ["a", "b", "c", "a"]


def test_concurrent_deliveries_of_one_event_act_once() -> None:
    seen: list[str] = []
    receiver = WebhookReceiver(
        SIGNING_KEY, on_bounce="none", on_event=lambda e: seen.append(e.event_id), clock=lambda: NOW
    )
    body = event_body(event_id="race")
    headers = {k.lower(): v for k, v in signed_headers(body, timestamp=NOW).items()}
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def deliver() -> None:
        barrier.wait(timeout=5)
        statuses.append(receiver.handle("POST", headers, body).status)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert statuses == [200] * 8
    assert seen == ["race"]


def test_constructor_validates_options() -> None:
    with pytest.raises(ValueError, match="signing_key"):
        WebhookReceiver("")
    with pytest.raises(ValueError, match="on_bounce"):
        WebhookReceiver("k", on_bounce="delete")
    with pytest.raises(ValueError, match="max_body"):
        WebhookReceiver("k", max_body=0)


def test_an_acting_receiver_says_at_construction_that_it_has_no_track_credentials(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without them every bounce's action would fail after the event was answered 200 and marked
    seen. Say so when the receiver is built (it still verifies and counts webhooks)."""
    from cioguard.clients import reset_clients

    for name in ("CUSTOMERIO_SITE_ID", "CUSTOMERIO_TRACK_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    reset_clients()
    with caplog.at_level("WARNING", logger="cioguard.webhooks"):
        WebhookReceiver("k", on_bounce="unsubscribe")
        WebhookReceiver("k", on_bounce="none")  # nothing to act through: nothing said
    said = [r.getMessage() for r in caplog.records if "cannot build one" in r.getMessage()]
    assert len(said) == 1
    assert "CUSTOMERIO_SITE_ID" in said[0]
    assert "on_bounce='none'" in said[0]
