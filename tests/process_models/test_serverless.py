"""``cioguard.serverless.handler``: Lambda-style handlers deliver before they return, never past
the time the platform has left, and never see a different result or exception.

The handlers run in the test process against the emulator, with default options (only the
emulator's URL; pitfalls off: the synthetic ids would warn, and warnings are errors here).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from process_support import free_port
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.serverless import handler
from cioguard.testing import FakeCustomerIO

EVENTS = 50


class LambdaContext:
    """The part of AWS Lambda's context object the decorator reads."""

    def __init__(self, remaining_ms: int) -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def instrumented() -> Iterator[Any]:
    """``instrument(track_url=…)`` with defaults; yields a function that sets the track URL."""

    def make(track_url: str) -> None:
        cioguard.instrument(track_url=track_url, pitfalls="off", registry=CollectorRegistry())

    yield make
    cioguard.uninstrument(timeout=1.0)


def send_events(tag: str) -> None:
    from customerio import CustomerIO

    cio = CustomerIO("site-id", "track-key")
    for i in range(EVENTS):
        cio.track(f"{tag}-{i % 5}", "lambda_event", data={"seq": i})


RESULT = {"statusCode": 200, "body": "ok"}


@handler
def sync_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    send_events(event["tag"])
    return RESULT


@handler(safety_margin=0.5)
async def async_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    send_events(event["tag"])
    await asyncio.sleep(0)
    return RESULT


class Boom(Exception):
    pass


@handler
def failing_handler(event: dict[str, Any], context: Any) -> None:
    send_events(event["tag"])
    raise Boom("the handler's own error")


def test_sync_handler_delivers_before_returning(fake: FakeCustomerIO, instrumented: Any) -> None:
    instrumented(fake.track_url)
    assert sync_handler({"tag": "s"}, LambdaContext(10_000)) is RESULT
    assert len(fake.events) == EVENTS  # already there: the flush ran before the return


def test_async_handler_delivers_before_returning(fake: FakeCustomerIO, instrumented: Any) -> None:
    instrumented(fake.track_url)
    assert asyncio.run(async_handler({"tag": "a"}, LambdaContext(10_000))) is RESULT
    assert len(fake.events) == EVENTS


def test_no_context_and_a_raising_handler(fake: FakeCustomerIO, instrumented: Any) -> None:
    instrumented(fake.track_url)
    with pytest.raises(Boom, match="the handler's own error"):
        failing_handler({"tag": "f"}, None)
    assert len(fake.events) == EVENTS  # flushed (bounded by exit_timeout) before re-raising


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("down", ["refused", "stalled"])
def test_api_down_returns_within_the_remaining_time(instrumented: Any, kind: str, down: str) -> None:
    remaining_ms = 1_500
    with FakeCustomerIO(https=False) as fake:
        fake.stall_next(10_000, seconds=30.0)  # every request held, never answered
        url = fake.track_url if down == "stalled" else f"http://127.0.0.1:{free_port()}"
        instrumented(url)
        context = LambdaContext(remaining_ms)
        began = time.monotonic()
        if kind == "sync":
            result = sync_handler({"tag": "d"}, context)
        else:
            result = asyncio.run(async_handler({"tag": "d"}, context))
        elapsed = time.monotonic() - began
        cioguard.uninstrument(timeout=0.0)
    assert result is RESULT
    # It used the time it had (minus the 0.5 s margin) and returned before the platform's deadline.
    assert 0.8 <= elapsed < remaining_ms / 1000.0, elapsed


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_no_time_left_is_logged_not_silent(
    fake: FakeCustomerIO, instrumented: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    instrumented(fake.track_url)
    fake.stall_next(10_000, seconds=5.0)  # nothing is delivered meanwhile
    context = LambdaContext(300)  # under the 0.5 s safety margin: no time to deliver
    began = time.monotonic()
    with caplog.at_level("WARNING", logger="cioguard"):
        if kind == "sync":
            sync_handler({"tag": "t"}, context)
        else:
            asyncio.run(async_handler({"tag": "t"}, context))
    assert time.monotonic() - began < 0.3
    assert any("no time left to deliver" in r.getMessage() for r in caplog.records), caplog.text


@handler
def echo(event: Any, context: Any = None) -> Any:
    return event


def test_not_instrumented_is_transparent() -> None:
    event = object()
    assert echo(event, LambdaContext(0)) is event
    assert echo(event) is event
    assert echo.__name__ == "echo"  # functools.wraps: Lambda and tracers see the real name


@pytest.mark.parametrize("bad", [{"safety_margin": -1.0}, {"timeout": float("nan")}, {"timeout": True}])
def test_invalid_options_raise_at_decoration(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"cioguard\.serverless\.handler"):
        handler(**bad)


def test_a_keyword_context_bounds_the_flush_too(instrumented: Any) -> None:
    instrumented(f"http://127.0.0.1:{free_port()}")  # nobody listens: the API is down
    began = time.monotonic()
    assert sync_handler({"tag": "k"}, context=LambdaContext(800)) is RESULT
    assert time.monotonic() - began < 0.8


@pytest.mark.parametrize("uses", ["nothing", "decorator", "flush"])
def test_on_lambda_an_undecorated_handler_is_told_once(
    fake: FakeCustomerIO,
    instrumented: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    uses: str,
) -> None:
    """Lambda freezes the process when the handler returns: without the decorator or a flush,
    the invocation's calls go out after a thaw at best. The first answer says so, once."""
    from cioguard.instrumentation import freeze

    monkeypatch.setenv(freeze.LAMBDA_VARIABLE, "orders-fn")
    monkeypatch.setattr(freeze, "_decorated", uses == "decorator")  # (this module decorates some)
    instrumented(fake.track_url)

    def plain_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        send_events(event["tag"])
        if uses == "flush":
            cioguard.flush(timeout=5)
        return RESULT

    with caplog.at_level("WARNING", logger="cioguard"):
        for invocation in range(3):
            assert plain_handler({"tag": f"inv{invocation}"}, LambdaContext(3_000)) == RESULT
            assert fake.wait_for(lambda n=invocation: len(fake.events) >= (n + 1) * EVENTS, timeout=10)
    told = [r.getMessage() for r in caplog.records if "@cioguard.serverless.handler" in r.getMessage()]
    if uses == "nothing":
        assert len(told) == 1
        assert "orders-fn" in told[0]
    else:
        assert told == []
