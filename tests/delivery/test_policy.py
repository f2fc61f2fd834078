from __future__ import annotations

import random

import pytest

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.policy import (
    PartialFailure,
    backoff_delay,
    endpoint_name,
    join_v2,
    parse_retry_after,
    retry_reason,
)
from cioguard.delivery.ratelimit import TokenBucket


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/api/v2/batch", "v2_batch"),
        ("POST", "/api/v1/customers/a%40b.com/events", "v1_track"),
        ("PUT", "/api/v1/customers/42", "v1_identify"),
        ("DELETE", "/api/v1/customers/42", "v1_delete"),
        ("PUT", "/api/v1/customers/42/devices", "v1_add_device"),
        ("DELETE", "/api/v1/customers/42/devices/tok", "v1_delete_device"),
        ("POST", "/api/v1/customers/42/suppress", "v1_suppress"),
        ("POST", "/api/v1/customers/42/unsuppress", "v1_unsuppress"),
        ("POST", "/api/v1/events", "v1_track_anonymous"),
        ("POST", "/api/v1/merge_customers", "v1_merge_customers"),
        ("POST", "/v1/send/email", "app_send_email"),
        ("POST", "/v1/send/evil-id-123", "app_other"),
        ("GET", "/somewhere/else", "other"),
        ("POST", "/api/v1/customers/42/weird", "other"),
    ],
)
def test_endpoint_name_is_bounded(method: str, path: str, name: str) -> None:
    assert endpoint_name(method, path) == name


def test_join_v2_envelope() -> None:
    assert join_v2([b"{}", b"[1]"]) == b'{"batch":[{},[1]]}'


def test_backoff_full_jitter_is_capped() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(30.0, 0.5 * 2**attempt)
        values = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling * 0.8  # full jitter spans the range


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "3"}, 60) == 3.0
    assert parse_retry_after({"retry-after": "9999"}, 60) == 60.0
    assert parse_retry_after({"retry-after": "-5"}, 60) == 0.0
    assert parse_retry_after({"retry-after": "soon"}, 60) is None
    assert parse_retry_after({}, 60) is None
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after({"retry-after": date}, 60, now=1445412480.0) == 10.0


def test_retry_reason() -> None:
    assert retry_reason(429, None) == "status_429"
    assert retry_reason(408, None) == "status_408"
    assert retry_reason(503, None) == "status_5xx"
    assert retry_reason(None, "timeout") == "timeout"
    assert retry_reason(None, "connection") == "connection"


def test_partial_failure_parsing_never_raises() -> None:
    body = b'{"errors":[{"batch_index":1,"reason":"invalid","field":"name"},{"batch_index":9},"x"]}'
    assert PartialFailure(body, 3).rejected == {1: ("invalid", "name")}
    assert PartialFailure(b"not json", 3).rejected == {}
    assert PartialFailure(b'{"errors":{"a":1}}', 3).rejected == {}
    assert PartialFailure(b'{"errors":[{"batch_index":true}]}', 3).rejected == {}


def test_token_bucket_rate_and_pause() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == 0.0
    assert bucket.reserve(0.0) == pytest.approx(0.1)
    assert bucket.reserve(0.1) == 0.0
    bucket.pause_until(5.0)
    assert bucket.reserve(1.0) == pytest.approx(4.0)
    bucket.pause_until(2.0)  # never shortens
    assert bucket.paused_until == 5.0
    assert bucket.reserve(5.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"overflow": "wait"}, "overflow must be one of drop_newest, drop_oldest, block"),
        ({"spool_sync": "never"}, "spool_sync must be one of always, group"),
        ({"max_batch_bytes": 600_000}, "max_batch_bytes"),
        ({"max_queue_size": 0}, "max_queue_size"),
        ({"lanes": True}, "lanes"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"flush_interval": -1}, "flush_interval"),
        ({"retry_base": float("nan")}, "retry_base"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_config_validation_names_the_option(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        DeliveryConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_valid() -> None:
    config = DeliveryConfig()
    assert config.max_batch_bytes < 500_000
    assert config.max_batch_operations >= 2000


def test_drops_held_back_by_the_log_limit_are_logged_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    from cioguard.delivery.counters import Counters

    now = [0.0]
    counters = Counters(lambda: now[0])
    with caplog.at_level("WARNING", logger="cioguard.delivery"):
        counters.drop("queue_full", 1)
        counters.drop("queue_full", 4)  # within the minute: counted, not logged yet
        counters.drop("rejected", 2)
        counters.log_unlogged()
        counters.log_unlogged()  # nothing new: no line
    lines = [record.getMessage() for record in caplog.records]
    assert sum("1 Customer.io" in line for line in lines) == 1
    assert sum("4 Customer.io" in line and "queue is full" in line for line in lines) == 1
    assert sum("2 Customer.io" in line for line in lines) == 1
    assert len(lines) == 3


def test_drops_held_back_by_the_log_limit_are_logged_when_their_minute_is_up(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long-running server: no later drop and no shutdown come to log what was held back.
    import time

    from cioguard.delivery import counters as module

    monkeypatch.setattr(module, "LOG_EVERY", 0.2)  # "a minute", shortened (real time)
    counters = module.Counters(time.monotonic)
    with caplog.at_level("WARNING", logger="cioguard.delivery"):
        counters.drop("rejected", 30, "HTTP 400")
        counters.drop("rejected", 20, "HTTP 400")  # within the minute: held back
        deadline = time.monotonic() + 5.0
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert "30 Customer.io" in lines[0]
    assert "20 Customer.io" in lines[1]
    assert "(HTTP 400)" in lines[1]


def test_a_drop_held_back_while_the_timer_logs_is_logged_in_its_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    # The timer thread is busy writing a line (a slow handler) when the next drop is held back:
    # that one still gets its line when its minute is up, not only at shutdown.
    import logging
    import threading
    import time

    from cioguard.delivery import counters as module

    monkeypatch.setattr(module, "LOG_EVERY", 0.2)
    lines: list[str] = []
    writing = threading.Event()

    class Slow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if lines:  # the timer's first line: slow
                writing.set()
                time.sleep(0.3)
            lines.append(record.getMessage())

    handler = Slow()
    logger = logging.getLogger("cioguard.delivery")
    logger.addHandler(handler)
    try:
        counters = module.Counters(time.monotonic)
        counters.drop("rejected", 1)  # logged at once
        counters.drop("rejected", 2)  # held: the timer logs it (slowly)
        assert writing.wait(5.0)
        counters.drop("rejected", 3)  # held while the timer is still writing
        deadline = time.monotonic() + 5.0
        while len(lines) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        logger.removeHandler(handler)
    assert [line.split(" ")[2] for line in lines] == ["1", "2", "3"]
