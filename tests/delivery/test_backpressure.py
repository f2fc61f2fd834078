"""Backpressure before loss, and short intake slices: the caller's pause by queue depth, and the
sender's GIL hand-offs (by time) while it takes the caller queue in (no threads, no sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sink import make_op

from cioguard.delivery import DeliveryConfig, DeliveryEngine, slices
from cioguard.delivery import state as state_module
from cioguard.operations.model import Endpoint

EP = Endpoint(api="track", base_url="http://127.0.0.1:9", auth_header="Basic eDp5")


@pytest.fixture
def engine() -> Iterator[DeliveryEngine]:
    made = DeliveryEngine(DeliveryConfig(max_queue_size=800))
    yield made
    made.shutdown(0.2)


def test_callers_pause_only_when_the_queue_is_nearly_full_and_draining(engine: DeliveryEngine) -> None:
    core = engine._core
    assert (core.high_water, core.brake_at) == (400, 700)
    assert core.brake(400) == 0.0  # above half full: a GIL hand-off only
    assert core.brake(699) == 0.0
    assert core.brake(700) == pytest.approx(state_module.BRAKE_MIN)
    assert core.brake(750) == pytest.approx((state_module.BRAKE_MIN + state_module.BRAKE_MAX) / 2)
    assert core.brake(800) == pytest.approx(state_module.BRAKE_MAX)
    core.outages = 1  # nothing drains in outage mode: callers are not slowed for nothing
    assert core.brake(800) == 0.0


def test_intake_hands_over_the_gil_between_short_time_slices(
    engine: DeliveryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each clock read is 20 µs later: a 100 µs slice holds about 5 operations (each one may run
    # deferred pitfall rules, so slices are bounded by time, not by count).
    ticks = iter(range(1_000_000))
    monkeypatch.setattr(slices, "_now", lambda: next(ticks) * 20e-6)
    monkeypatch.setattr(slices, "_pressed_until", 0.0)  # no caller under backpressure
    core = engine._core
    sizes: list[int] = []
    monkeypatch.setattr(slices, "_release", lambda seconds: sizes.append(core.sched.size))
    ops = [make_op(EP, person=f"p{i}") for i in range(200)]
    core.inbox.extend(ops)  # what 200 submits leave behind (no sender thread started)
    with core.lock:
        core.intake(core.clock())
    assert core.sched.size == 200
    assert not core.inbox
    stretches = [b - a for a, b in zip([0, *sizes], [*sizes, 200], strict=True)]
    assert len(sizes) >= 30
    assert max(stretches) <= 6  # operations taken in between two hand-offs


def test_callers_on_an_event_loop_never_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pause on an event loop's thread would stall every coroutine: there only the GIL hand-off.
    import asyncio

    from cioguard.delivery import backpressure as engine_module

    pauses: list[float] = []
    monkeypatch.setattr(engine_module, "_pause", pauses.append)
    made = DeliveryEngine(DeliveryConfig(max_queue_size=800))
    try:
        monkeypatch.setattr(made._core, "wake", lambda: None)  # no sender: the queue stays
        for i in range(760):  # past brake_at (700): a plain thread pauses
            made.submit(make_op(EP, person=f"t{i}"))
        assert max(pauses) > 0
        pauses.clear()

        async def from_a_coroutine() -> None:
            for i in range(30):
                made.submit(make_op(EP, person=f"a{i}"))

        asyncio.run(from_a_coroutine())
        assert len(pauses) == 30
        assert set(pauses) == {0.0}
    finally:
        made.shutdown(0.2)


def test_under_backpressure_the_sender_works_in_longer_stretches(
    engine: DeliveryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hand-off sleeps ~70 µs (Linux timer slack): while callers are slowed anyway, fewer of them.
    ticks = iter(range(1_000_000))
    monkeypatch.setattr(slices, "_now", lambda: next(ticks) * 20e-6)
    slices.press()  # a caller over the high water, just now (pressure lasts PRESSURE_LINGER)
    core = engine._core
    sizes: list[int] = []
    monkeypatch.setattr(slices, "_release", lambda seconds: sizes.append(core.sched.size))
    core.inbox.extend(make_op(EP, person=f"p{i}") for i in range(800))
    with core.lock:
        core.intake(core.clock())
    assert core.sched.size == 800
    stretches = [b - a for a, b in zip([0, *sizes], [*sizes, 800], strict=True)]
    # 2 ms stretches (about 100 operations at one clock read each) while the pressure lasts,
    # then back to 0.1 ms slices once it is over (10 ms after the press).
    assert 60 <= stretches[0] <= 110
    assert max(stretches[-20:]) <= 6


def test_callers_hand_over_the_gil_for_what_waits_to_be_sent_not_for_what_is_in_flight(
    engine: DeliveryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cioguard.delivery import backpressure as engine_module

    pauses: list[float] = []
    monkeypatch.setattr(engine_module, "_pause", pauses.append)
    monkeypatch.setattr(engine_module, "press", lambda: pauses.append(-1.0))
    core = engine._core  # high water 400, brake from 700, capacity 800
    core.inflight = 300
    engine_module.backpressure(core, 500)  # 200 waiting to be sent: nothing to do
    assert pauses == []
    engine_module.backpressure(core, 650)  # 350 waiting: still under the high water
    assert pauses == []
    core.inflight = 100
    engine_module.backpressure(core, 650)  # 550 waiting: a hand-off, the sender pressed
    assert pauses == [-1.0, 0.0]
    pauses.clear()
    core.inflight = 600
    engine_module.backpressure(core, 750)  # nearly full, mostly in flight: still a pause
    assert pauses[0] == -1.0
    assert pauses[1] == pytest.approx((state_module.BRAKE_MIN + state_module.BRAKE_MAX) / 2)
