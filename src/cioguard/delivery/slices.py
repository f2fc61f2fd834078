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
"""

from __future__ import annotations

import time

#: Longest stretch of sender work between two GIL hand-offs (seconds). Invariant: every per-batch
#: or per-intake loop on a sender thread ticks a :class:`Budget` or runs in chunks of
#: :data:`CHUNK` operations, so a caller never waits much longer than this for the GIL.
SLICE_SECONDS = 0.0001
#: Operations handled by C-level calls (``map``, ``join``) between two hand-offs.
CHUNK = 512

#: Module attributes (looked up at each call) so tests can count hand-offs and drive the clock.
_now = time.perf_counter
_release = time.sleep


def handoff() -> None:
    """Release the GIL once (``time.sleep(0)``): a waiting caller runs before we go on."""
    _release(0)


class Budget:
    """A time slice of sender work; :meth:`tick` hands the GIL over when it is spent."""

    __slots__ = ("_until", "handoffs")

    def __init__(self, seconds: float = SLICE_SECONDS) -> None:
        self._until = _now() + seconds
        #: Hand-offs made so far (tests, and the profile of a long intake).
        self.handoffs = 0

    def tick(self) -> None:
        if _now() >= self._until:
            _release(0)
            self.handoffs += 1
            self._until = _now() + SLICE_SECONDS
