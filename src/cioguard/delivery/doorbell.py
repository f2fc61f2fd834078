"""How callers and sender threads wake idle sender threads without the engine's lock.

::

    bell = Doorbell()
    seen = bell.rings            # a sender, before it looks for work (engine lock held)
    ...                          # nothing to do: release the engine lock, then
    bell.wait(seen, timeout)     # returns at once if anyone rang since ``seen`` was read
    bell.ring()                  # a caller after its append (or ``ring(every=True)``)

A sender thread holds the engine's lock while it takes calls in or picks a batch, for up to
milliseconds (in short GIL slices). A caller that had to take that lock to wake an idle sender
would wait all that time, so the doorbell has its own lock, held only for a counter update and a
notify. Invariant (no lost wake-ups): a sender reads ``rings`` before it checks for work, and a
caller appends before it rings, so either the sender sees the work or ``wait`` sees a new ring.
"""

from __future__ import annotations

import threading


class Doorbell:
    __slots__ = ("_cond", "rings")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        #: Rings so far (read without the lock: an int read is atomic).
        self.rings = 0

    def ring(self, every: bool = False) -> None:
        """Wake one waiting sender (``every``: all of them); the next ``wait`` returns at once."""
        with self._cond:
            self.rings += 1
            if every:
                self._cond.notify_all()
            else:
                self._cond.notify()

    def wait(self, seen: int, timeout: float | None) -> None:
        """Sleep until a ring after ``seen`` or ``timeout`` seconds (None: no limit); may return early."""
        with self._cond:
            if self.rings == seen:
                self._cond.wait(timeout)
