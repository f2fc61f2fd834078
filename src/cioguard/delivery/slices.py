"""Short stretches of pure-Python work on the sender threads, with the GIL handed over between them.

::

    from cioguard.delivery.slices import Budget, handoff

    budget = Budget()            # a slice starts now
    for op in batch:
        ...                      # per-operation work
        budget.tick()            # once the slice is spent: hand the GIL over, start the next one
    handoff()                    # between two phases of a batch (cheap when nobody waits)

Sender threads share the GIL with the application's threads. Python 3.11 lets a thread that runs
Python code keep the GIL until it blocks or the 5 ms switch interval forces a switch, so a sender
loop over a 2 000-operation batch would stall a caller for milliseconds (its p99.9 latency).
``time.sleep(0)`` releases the GIL: a thread waiting for it runs first. The process-wide switch
interval (``sys.setswitchinterval``) is never changed: a library must not.

A hand-off is not free: on Linux ``time.sleep(0)`` sleeps for the timer slack (50 µs by default,
~70 µs measured here) before it asks for the GIL back. While callers are under backpressure (they
outpace the sender and hand it the GIL or pause: :func:`press`), the sender works in stretches of
up to :data:`PRESSED_SLICE_SECONDS` instead: about 40 % more events/s end to end, and the callers
wait anyway.
"""

from __future__ import annotations

import time

#: Longest stretch of sender work between two GIL hand-offs (seconds). Invariant: every per-batch
#: or per-intake loop on a sender thread ticks a :class:`Budget` or runs in chunks of
#: :data:`CHUNK` operations, so a caller never waits much longer than this for the GIL.
SLICE_SECONDS = 0.0001
#: Operations handled by C-level calls (``map``, ``join``) between two hand-offs.
CHUNK = 512
#: Longest stretch of sender work between two hand-offs while callers are under backpressure.
PRESSED_SLICE_SECONDS = 0.002
#: How long callers count as under backpressure after the last one was (seconds).
PRESSURE_LINGER = 0.01

#: Module attributes (looked up at each call) so tests can count hand-offs and drive the clock.
_now = time.perf_counter
_release = time.sleep
#: ``_now()`` time until which callers count as under backpressure (written by callers).
_pressed_until = 0.0


def press() -> None:
    """Callers are under backpressure (a caller over the queue's high water): longer stretches."""
    global _pressed_until
    _pressed_until = _now() + PRESSURE_LINGER


def may_go_on(started: float, now: float) -> bool:
    """Whether a stretch of sender work begun at ``started`` may go on past its slice: only while
    callers are under backpressure, and up to :data:`PRESSED_SLICE_SECONDS`."""
    return now < _pressed_until and now - started < PRESSED_SLICE_SECONDS


def handoff() -> None:
    """Release the GIL once (``time.sleep(0)``): a waiting caller runs before we go on."""
    _release(0)


class Budget:
    """A time slice of sender work; :meth:`tick` hands the GIL over when it is spent."""

    __slots__ = ("_started", "_until", "handoffs")

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self._started = _now()
        self._until = self._started + seconds
        #: Hand-offs made so far (tests, and the profile of a long intake).
        self.handoffs = 0

    def tick(self) -> None:
        now = _now()
        if now >= self._until:
            if may_go_on(self._started, now):
                self._until = now + SLICE_SECONDS  # (looked at again a slice later)
                return
            _release(0)
            self.handoffs += 1
            self._started = _now()
            self._until = self._started + SLICE_SECONDS
