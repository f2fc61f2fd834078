"""FillWatch: how long the queue has stayed nearly full, as the sender sees each change of level."""

from __future__ import annotations

from cioguard.delivery.fill import FillWatch


def test_a_sawtooth_around_nearly_full_is_one_stretch() -> None:
    # Overload: each answered batch takes the level a step down, then callers fill it again.
    watch, now = FillWatch(10_000), 0.0
    for tick in range(60):  # every half second for 30 s: 1.5 s at 85 %, 1 s at 70 %
        watch.observe(8_500 if tick % 5 < 3 else 7_000, now)
        now += 0.5
    assert watch.held(now) >= 29.0


def test_bursts_with_idle_gaps_are_separate_stretches() -> None:
    watch, now = FillWatch(10_000), 0.0
    for _burst in range(3):
        for size in (5_000, 9_000, 9_000, 9_000, 4_000, 0):  # filled, then drained by the sender
            watch.observe(size, now)
            now += 0.5
        now += 12.0  # idle: nothing changes, nothing is observed
    assert watch.held(now) == 0.0
    watch.observe(9_000, now)
    assert watch.held(now + 2.0) == 2.0  # a new stretch, not one since the first burst


def test_a_level_below_for_a_while_ends_the_stretch() -> None:
    watch = FillWatch(100)
    watch.observe(90, 0.0)
    watch.observe(70, 5.0)
    assert watch.held(6.0) == 6.0  # a dip of 1 s: still one stretch
    assert watch.held(8.5) == 0.0  # below for 3.5 s: over
    watch.observe(95, 9.0)
    assert watch.held(10.0) == 1.0
    watch.observe(40, 10.5)  # under half: drained, over at once
    assert watch.held(10.6) == 0.0


def test_bursts_that_drain_between_them_are_never_one_stretch() -> None:
    # Bursts every 2 s: nearly full for a moment, then drained by the sender well within 3 s.
    watch, now = FillWatch(10_000), 0.0
    for _burst in range(8):
        for size in (8_500, 6_000, 2_000, 0):
            watch.observe(size, now)
            now += 0.5
    assert watch.held(now) == 0.0
