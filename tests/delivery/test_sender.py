"""Retry, 207, rate-limit and deadline rules of one batch, with a fake clock (no sleeping)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from sink import FakeClock, make_op

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.sender import BatchSender
from cioguard.delivery.transport import TransportError, TransportResponse
from cioguard.operations.model import Endpoint
from cioguard.telemetry.recorder import NullRecorder

EP = Endpoint(api="track", base_url="http://127.0.0.1:9", auth_header="Basic eDp5")


class ScriptedTransport:
    """In-memory transport: answers from a script, records calls and the clock at each."""

    def __init__(self, clock: FakeClock, *replies: TransportResponse | TransportError) -> None:
        self.clock = clock
        self.replies = deque(replies)
        self.calls: list[tuple[str, str, bytes, dict[str, str], float, float]] = []

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        self.calls.append((method, url, body, dict(headers), timeout, self.clock.now))
        reply = self.replies.popleft() if self.replies else TransportResponse(200)
        if isinstance(reply, TransportError):
            raise reply
        return reply


class Rec(NullRecorder):
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def retry(self, endpoint: str, reason: str) -> None:
        self.events.append(("retry", endpoint, reason))

    def rate_limited(self, endpoint: str) -> None:
        self.events.append(("rate_limited", endpoint))

    def request(self, endpoint: str, status_code: str, seconds: float, error_type: str | None = None) -> None:
        self.events.append(("request", endpoint, status_code))


def make_sender(
    clock: FakeClock,
    transport: ScriptedTransport,
    deadline: float | None = None,
    hook: list[tuple[Endpoint, int]] | None = None,
    **options: Any,
) -> tuple[BatchSender, Rec, Counters]:
    config = DeliveryConfig(**options)
    rec = Rec()
    counters = Counters(clock)
    sender = BatchSender(
        config,
        transport,
        rec,
        counters,
        clock,
        clock.sleep,
        random.Random(7),
        lambda: deadline,
        on_response=(lambda ep, status: hook.append((ep, status))) if hook is not None else None,
    )
    return sender, rec, counters


def test_v2_batch_request_shape(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock)
    sender, rec, _ = make_sender(clock, transport)
    ops = [make_op(EP, person=f"p{i}") for i in range(3)]
    result = sender.send(ops)
    assert result.delivered == ops
    method, url, body, headers, timeout, _ = transport.calls[0]
    assert (method, url, timeout) == ("POST", "http://127.0.0.1:9/api/v2/batch", 10.0)
    assert orjson.loads(body)["batch"] == [orjson.loads(op.body) for op in ops]
    assert headers["Authorization"] == "Basic eDp5"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("cioguard/")
    assert rec.events == [("request", "v2_batch", "200")]


def test_single_route_uses_its_own_method_and_path(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock)
    sender, rec, _ = make_sender(clock, transport)
    op = make_op(EP, person="bob", route="single")
    assert sender.send([op]).delivered == [op]
    assert transport.calls[0][:3] == ("POST", "http://127.0.0.1:9/api/v1/customers/bob/events", op.body)
    assert rec.events == [("request", "v1_track", "200")]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (TransportResponse(500), "status_5xx"),
        (TransportResponse(503), "status_5xx"),
        (TransportResponse(408), "status_408"),
        (TransportError("timeout"), "timeout"),
        (TransportError("connection"), "connection"),
    ],
)
def test_retryable_faults_are_retried_exactly_max_retries_times(
    clock: FakeClock, fault: TransportResponse | TransportError, reason: str
) -> None:
    transport = ScriptedTransport(clock, *([fault] * 10))
    sender, rec, counters = make_sender(clock, transport, max_retries=3)
    result = sender.send([make_op(EP)])
    assert len(transport.calls) == 4
    assert result.delivered == []
    assert len(result.dropped["expired"]) == 1
    assert [e for e in rec.events if e[0] == "retry"] == [("retry", "v2_batch", reason)] * 3
    assert counters.snapshot()["retries"] == 3


def test_429s_are_never_attempts(clock: FakeClock) -> None:
    # A burst of 429s then one 500 loses nothing even with max_retries=1 (explicit opt-in bound).
    replies = [TransportResponse(429)] * 10 + [TransportResponse(500), TransportResponse(200)]
    transport = ScriptedTransport(clock, *replies)
    sender, rec, _ = make_sender(clock, transport, max_retries=1, rate_limit=1e6)
    assert len(sender.send([make_op(EP)]).delivered) == 1
    assert len(transport.calls) == 12
    assert ("rate_limited", "v2_batch") in rec.events


def test_patience_is_time_not_count(clock: FakeClock) -> None:
    # Defaults: no attempt bound; a dead endpoint is retried until delivery_timeout has passed.
    transport = ScriptedTransport(clock, *([TransportResponse(503)] * 10_000))
    sender, _, _ = make_sender(clock, transport, delivery_timeout=120.0, rate_limit=1e6)
    began = clock.now
    result = sender.send([make_op(EP)])
    assert len(result.dropped["expired"]) == 1
    assert 120.0 <= clock.now - began <= 120.0 + 30.0  # at most one capped backoff past it
    assert len(transport.calls) > 4


def test_retry_then_success_uses_capped_jittered_backoff(clock: FakeClock) -> None:
    transport = ScriptedTransport(
        clock, TransportResponse(502), TransportResponse(502), TransportResponse(200)
    )
    sender, _, _ = make_sender(clock, transport, retry_base=0.5, retry_cap=0.75, rate_limit=1e6)
    assert len(sender.send([make_op(EP)]).delivered) == 1
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 0.5
    assert 0 <= clock.sleeps[1] <= 0.75


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_rejected_without_retry_and_reported(clock: FakeClock, status: int) -> None:
    hook: list[tuple[Endpoint, int]] = []
    transport = ScriptedTransport(clock, TransportResponse(status))
    sender, _, _ = make_sender(clock, transport, hook=hook)
    result = sender.send([make_op(EP), make_op(EP)])
    assert len(transport.calls) == 1
    assert len(result.dropped["rejected"]) == 2
    assert hook == [(EP, status)]


def test_207_rejects_only_listed_entries(clock: FakeClock) -> None:
    body = b'{"errors":[{"batch_index":1,"reason":"required","field":"name","message":"m"}]}'
    transport = ScriptedTransport(clock, TransportResponse(207, {}, body))
    sender, _, _ = make_sender(clock, transport)
    ops = [make_op(EP) for _ in range(3)]
    result = sender.send(ops)
    assert result.delivered == [ops[0], ops[2]]
    assert result.dropped["rejected"] == [ops[1]]
    assert len(transport.calls) == 1
    assert "required" in sender.last_rejection


@pytest.mark.parametrize(
    "body",
    [
        b"<html>partial</html>",
        b'{"errors":[]}',
        b'{"errors":[{"batch_index":"0","reason":"invalid"}]}',
        b'{"errors":[{"reason":"invalid"}]}',
        b'{"errors":[{"batch_index":7,"reason":"invalid"}]}',
        b'{"errors":{"batch_index":0}}',
    ],
)
def test_a_207_without_a_readable_error_list_is_delivered_with_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    transport = ScriptedTransport(clock, TransportResponse(207, {}, body))
    sender, _, _ = make_sender(clock, transport)
    ops = [make_op(EP) for _ in range(3)]
    with caplog.at_level("WARNING", logger="cioguard.delivery"):
        result = sender.send(ops)
    assert result.delivered == ops
    assert any("without a readable errors list" in r.getMessage() for r in caplog.records)


EU = Endpoint(api="track", base_url="https://track.customer.io", auth_header="Basic eDp5")
LOCAL = Endpoint(api="track", base_url="http://cio.internal", auth_header="Basic eDp5")


@pytest.mark.parametrize(
    ("endpoint", "status", "location", "followed_to"),
    [
        (EU, 307, "https://track-eu.customer.io/api/v2/batch", "https://track-eu.customer.io/api/v2/batch"),
        (EU, 301, "https://track-eu.customer.io/api/v2/batch", "https://track-eu.customer.io/api/v2/batch"),
        (LOCAL, 308, "https://cio.internal/api/v2/batch", "https://cio.internal/api/v2/batch"),  # to https
    ],
)
def test_a_redirect_where_the_credentials_may_go_is_followed_with_the_same_request(
    clock: FakeClock, endpoint: Endpoint, status: int, location: str, followed_to: str
) -> None:
    transport = ScriptedTransport(
        clock, TransportResponse(status, {"location": location}), TransportResponse(200)
    )
    sender, _, _ = make_sender(clock, transport)
    ops = [make_op(endpoint)]
    result = sender.send(ops)
    assert result.delivered == ops
    (first, second) = transport.calls
    assert second[1] == followed_to
    assert (second[0], second[2], second[3]) == (first[0], first[2], first[3])  # POST, body, Authorization


@pytest.mark.parametrize(
    ("endpoint", "status", "location"),
    [
        (EU, 301, "https://evil.example.com/api/v2/batch"),  # another host
        (EU, 307, "http://track-eu.customer.io/api/v2/batch"),  # credentials in clear text
        (EU, 302, "/"),  # a web site's home page answering 200: not a delivery
        (EU, 303, "https://track-eu.customer.io/api/v2/batch"),  # "now GET that"
        (EP, 307, "http://127.0.0.1:10/api/v2/batch"),  # another port of the same host
        (EU, 308, "https://localhost\\.customer.io/api/v2/batch"),  # requests: host localhost
        (EU, 308, "https://track-eu.customer.io:8443/api/v2/batch"),  # another port
        (EU, 308, "https://user:pw@track-eu.customer.io/api/v2/batch"),  # userinfo
        (EU, 308, "https://evil.com%2F.customer.io/api/v2/batch"),
        (EU, 301, None),
    ],
)
def test_a_redirect_elsewhere_is_not_followed_and_says_why(
    clock: FakeClock, endpoint: Endpoint, status: int, location: str | None
) -> None:
    headers = {} if location is None else {"location": location}
    transport = ScriptedTransport(clock, TransportResponse(status, headers))
    sender, _, _ = make_sender(clock, transport)
    result = sender.send([make_op(endpoint)])
    assert len(transport.calls) == 1
    assert len(result.dropped["rejected"]) == 1
    assert "redirect" in sender.last_rejection
    assert "not followed" in sender.last_rejection


def test_a_redirect_is_followed_once_never_a_chain(clock: FakeClock) -> None:
    moved = TransportResponse(307, {"location": "https://track-eu.customer.io/api/v2/batch"})
    transport = ScriptedTransport(clock, moved, moved)
    sender, _, _ = make_sender(clock, transport)
    result = sender.send([make_op(EU)])
    assert len(transport.calls) == 2
    assert len(result.dropped["rejected"]) == 1
    assert "redirected again" in sender.last_rejection


def test_retry_after_is_a_floor_and_pauses_the_endpoint(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock, TransportResponse(429, {"retry-after": "7"}), TransportResponse(200))
    sender, rec, counters = make_sender(clock, transport, retry_base=0.01)
    assert len(sender.send([make_op(EP)]).delivered) == 1
    gap = transport.calls[1][5] - transport.calls[0][5]
    assert gap >= 7.0
    assert ("rate_limited", "v2_batch") in rec.events
    assert counters.snapshot()["rate_limited"] == 1
    assert sender.bucket(EP).paused_until == pytest.approx(transport.calls[0][5] + 7.0)


def test_retry_after_is_clamped(clock: FakeClock) -> None:
    transport = ScriptedTransport(
        clock, TransportResponse(503, {"retry-after": "86400"}), TransportResponse(200)
    )
    sender, _, _ = make_sender(clock, transport, retry_after_max=60.0, retry_base=0.01)
    sender.send([make_op(EP)])
    assert transport.calls[1][5] - transport.calls[0][5] == pytest.approx(60.0, abs=0.02)


def test_429_without_retry_after_uses_default_pause(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock, TransportResponse(429), TransportResponse(200))
    sender, _, _ = make_sender(clock, transport, retry_base=0.0, rate_limit_pause=1.5)
    sender.send([make_op(EP)])
    assert transport.calls[1][5] - transport.calls[0][5] >= 1.5


def test_rate_limit_spaces_requests(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock)
    sender, _, _ = make_sender(clock, transport, rate_limit=10.0, rate_burst=1)
    for _ in range(21):
        sender.send([make_op(EP)])
    times = [c[5] for c in transport.calls]
    assert times[-1] - times[0] == pytest.approx(2.0, abs=1e-6)  # 10 req/s, no burst


def test_deadline_limits_request_timeout_and_stops_retries(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock, TransportResponse(500), TransportResponse(500))
    sender, _, _ = make_sender(clock, transport, deadline=clock.now + 0.3, retry_base=1.0, max_retries=5)
    result = sender.send([make_op(EP)])
    assert transport.calls[0][4] == pytest.approx(0.3)
    # the next backoff (>= 0 .. 1 s) either fits or not; either way nothing runs past the deadline
    assert all(c[5] < 1000.3 for c in transport.calls)
    assert "shutdown" in result.dropped or "expired" in result.dropped


def test_past_deadline_sends_nothing(clock: FakeClock) -> None:
    transport = ScriptedTransport(clock)
    sender, _, _ = make_sender(clock, transport, deadline=clock.now - 1)
    assert len(sender.send([make_op(EP)]).dropped["shutdown"]) == 1
    assert transport.calls == []


def test_broken_transport_and_hook_never_raise(clock: FakeClock) -> None:
    class Broken:
        def send(self, *args: object) -> TransportResponse:
            raise RuntimeError("boom")

    config = DeliveryConfig(max_retries=1, retry_base=0.0)
    counters = Counters(clock)

    def hook(ep: Endpoint, status: int) -> None:
        raise RuntimeError("hook")

    sender = BatchSender(
        config, Broken(), NullRecorder(), counters, clock, clock.sleep, random.Random(), lambda: None
    )
    result = sender.send([make_op(EP)])
    assert len(result.dropped["expired"]) == 1
    ok = ScriptedTransport(clock)
    sender2 = BatchSender(
        config,
        ok,
        NullRecorder(),
        counters,
        clock,
        clock.sleep,
        random.Random(),
        lambda: None,
        on_response=hook,
    )
    assert len(sender2.send([make_op(EP)]).delivered) == 1
    assert counters.snapshot()["errors"] >= 2


def test_429_waits_the_pause_without_escalating_backoff(clock: FakeClock) -> None:
    replies = [TransportResponse(429)] * 4 + [TransportResponse(500), TransportResponse(200)]
    transport = ScriptedTransport(clock, *replies)
    sender, _, _ = make_sender(
        clock, transport, max_retries=5, retry_base=2.0, retry_cap=100.0, rate_limit=1e6
    )
    assert len(sender.send([make_op(EP)]).delivered) == 1
    gaps = [b[5] - a[5] for a, b in zip(transport.calls, transport.calls[1:], strict=False)]
    assert gaps[:4] == pytest.approx([1.0] * 4)  # rate_limit_pause each time, no growth
    assert gaps[4] <= 2.0  # the first real fault backs off from the base again


def test_a_retry_after_of_minutes_is_honoured_by_default(clock: FakeClock) -> None:
    transport = ScriptedTransport(
        clock, TransportResponse(429, {"retry-after": "90"}), TransportResponse(200)
    )
    sender, _, _ = make_sender(clock, transport)
    assert len(sender.send([make_op(EP)]).delivered) == 1
    assert transport.calls[1][5] - transport.calls[0][5] >= 90.0
