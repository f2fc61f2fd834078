"""What one response means (pure policy), and a 2xx body listing ``errors`` read like a 207."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest
from sink import FakeClock, make_op

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.policy import classify, expired
from cioguard.delivery.sender import BatchSender
from cioguard.delivery.transport import TransportResponse
from cioguard.operations.model import Endpoint
from cioguard.telemetry.recorder import NullRecorder

EP = Endpoint(api="track", base_url="http://127.0.0.1:9", auth_header="Basic eDp5")


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (200, None, "ok"),
        (207, None, "ok"),
        (429, None, "throttled"),
        (408, None, "transient"),
        (500, None, "transient"),
        (503, None, "transient"),
        (None, "timeout", "transient"),
        (None, "connection", "transient"),
        (400, None, "final"),
        (401, None, "final"),
        (404, None, "final"),
    ],
)
def test_classify(status: int | None, error: str | None, verdict: str) -> None:
    assert classify(status, error) == verdict


def test_patience_is_time_and_max_retries_only_if_set() -> None:
    assert not expired(599.0, 10_000, 600.0, None)
    assert expired(600.0, 0, 600.0, None)
    assert expired(1.0, 4, 600.0, 3)
    assert not expired(1.0, 3, 600.0, 3)


class Once:
    def __init__(self, reply: TransportResponse) -> None:
        self.reply = reply

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> TransportResponse:
        return self.reply


@pytest.mark.parametrize("status", [200, 207])
def test_a_2xx_body_listing_errors_rejects_those_entries(status: int) -> None:
    clock = FakeClock()
    body = b'{"errors":[{"batch_index":1,"reason":"invalid","field":"identifiers"}]}'
    sender = BatchSender(
        DeliveryConfig(),
        Once(TransportResponse(status, body=body)),
        NullRecorder(),
        Counters(clock),
        clock,
        clock.sleep,
        random.Random(1),
        lambda: None,
    )
    ops = [make_op(EP, person=f"p{i}", seq=i) for i in range(3)]
    result = sender.send(ops)
    assert result.delivered == [ops[0], ops[2]]
    assert result.dropped == {"rejected": [ops[1]]}
    assert "identifiers" in sender.last_rejection
