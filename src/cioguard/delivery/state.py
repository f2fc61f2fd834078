"""The engine's mutable state and everything done with it under its lock, apart from sending.

:class:`CoreState` holds the caller queue (``inbox``: callers only ``append`` to it), the
:class:`~cioguard.delivery.scheduler.Scheduler`, counters, flush markers and the spill
bookkeeping; :class:`cioguard.delivery.dispatch.Core` adds the sender threads. A child process
after ``fork`` gets a new one. Intake runs on a sender thread, in queue order: it counts, writes
spool rows, records per-intake metrics and turns each operation into a scheduler entry.
"""

from __future__ import annotations

import random as _random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.durable import SpoolLink
from cioguard.delivery.outcomes import Mark, Outcomes
from cioguard.delivery.policy import EndpointHealth
from cioguard.delivery.scheduler import Entry, Scheduler
from cioguard.delivery.sender import BatchSender
from cioguard.operations.model import Operation
from cioguard.telemetry.recorder import Recorder
from cioguard.threads import daemon_thread

NEVER = 1 << 62
#: Operations taken in between two GIL hand-offs (one slice costs well under 0.2 ms).
INTAKE_SLICE = 64
#: ``time.sleep(0)`` releases the GIL (callers append without the engine lock meanwhile).
_release_gil = time.sleep
#: A caller's pause when the queue is nearly full: 1 ms at ``brake_at``, 50 ms at capacity.
BRAKE_MIN = 0.001
BRAKE_MAX = 0.050


class CoreState:
    def __init__(
        self,
        config: DeliveryConfig,
        recorder: Recorder,
        sender_factory: Callable[[Counters, Callable[[], float | None]], BatchSender],
        link_factory: Callable[[Counters], SpoolLink],
        clock: Callable[[], float],
        wall: Callable[[], float],
        rng: _random.Random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall = wall
        self.rng = rng
        self.recorder = recorder
        self.lock = threading.RLock()  # re-entrant: flush() may run in a signal handler
        self.work = threading.Condition(self.lock)
        self.space = threading.Condition(self.lock)
        self.inbox: deque[Any] = deque()
        #: A sender thread waits with nothing to do: the next submit must wake it.
        self.idle = True
        #: Inbox length at which a submit wakes a sender waiting for a partial batch.
        self.nudge_at = NEVER
        self.capacity = config.max_queue_size
        #: From this many queued operations a submit yields the GIL to the sender once, and from
        #: ``brake_at`` it pauses a millisecond (backpressure before ``overflow`` applies).
        self.high_water = max(1, config.max_queue_size // 2)
        self.brake_at = max(1, config.max_queue_size * 7 // 8)
        self.counters = Counters(clock)
        self.out = Outcomes(self.counters, recorder, config.on_drop)
        self.sched = Scheduler(config)
        self.deadline: float | None = None
        self.sender = sender_factory(self.counters, lambda: self.deadline)
        self.link = link_factory(self.counters)
        # With a spool every operation is written (always) or queued for the next group commit
        # (group) before submit returns: a crash loses at most the group-commit window.
        self.keep_on_caller = self.link.on
        self.patience = config.spool_max_age if self.link.on else config.delivery_timeout
        self.health: dict[str, EndpointHealth] = {}
        #: Endpoints in outage mode now (written under the lock, read lock-free by callers).
        self.outages = 0
        self.labels: dict[str, str] = {}
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.stopped = False
        self.seq = 0
        self.inflight = 0
        self.marks: list[Mark] = []
        self.spilled = 0  # rows waiting on disk only
        self.spill_in = 0  # ever spilled (ordinals for flush accounting)
        self.spill_out = 0  # ever reloaded
        self.reloading = False
        self.space_waiters = 0
        self.next_sweep = 0.0
        self.owner: object = None
        # Gauges from the start (an idle worker exports its capacity, not 0), and again after fork.
        recorder.queue_capacity(self.capacity)
        recorder.queue_size(0)

    # -- waking (callers) ----------------------------------------------------------------------

    def wake(self) -> None:
        with self.lock:
            self.idle = False
            self.nudge_at = NEVER
            if not self.threads and not self.stopped:
                self._start()
            self.work.notify()

    def _start(self) -> None:
        self.recorder.queue_capacity(self.capacity)
        for index in range(self.config.lanes):
            # daemon_thread blocks process signals first: SIGTERM/SIGINT reach the main thread.
            thread = daemon_thread(self.run, f"cioguard-delivery-{index}")
            self.threads.append(thread)
            thread.start()

    def run(self) -> None:
        """A sender thread's body (see :class:`cioguard.delivery.dispatch.Core`)."""
        raise NotImplementedError

    def brake(self, queued: int) -> float:
        """A caller's pause at ``queued`` (from ``high_water``): 0 (a GIL hand-off) below
        ``brake_at``, then 1 ms rising to :data:`BRAKE_MAX` at capacity; none while an endpoint
        is in outage mode."""
        if queued < self.brake_at or self.outages:
            return 0.0  # (in outage mode nothing drains: pausing would only slow the app)
        room = max(1, self.capacity - self.brake_at)
        return BRAKE_MIN + (BRAKE_MAX - BRAKE_MIN) * min(1.0, (queued - self.brake_at) / room)

    def pending(self) -> int:
        return len(self.inbox) + self.sched.size + self.spilled

    # -- intake (sender threads, lock held) ------------------------------------------------------

    def intake(self, now: float) -> None:
        inbox = self.inbox
        taken = len(inbox)
        if not taken:
            return
        config, sched, link = self.config, self.sched, self.link
        keep = link.on and not self.keep_on_caller
        limit = config.max_batch_bytes - ENVELOPE_BYTES
        wall = self.wall()
        accepted: list[Operation] = []
        oversize: list[Operation] = []
        popleft = inbox.popleft
        for done in range(taken):
            if done and not done % INTAKE_SLICE:
                # Callers share the GIL with this loop: hand it over between short slices so a
                # call never waits for a whole intake pass (p99.9 caller latency).
                _release_gil(0)
            # Invariant: an operation leaves the inbox only after it is in the scheduler, so a
            # caller's lock-free ``len(inbox) + sched.size`` never under-counts (the bound holds).
            item = inbox[0]
            if type(item) is Mark:
                self._place_mark(item)
                popleft()
                continue
            op: Operation = item
            if op.route == "v2" and op.size > limit:
                oversize.append(op)
                popleft()
                continue
            accepted.append(op)
            if keep:
                link.keep(op)
            created = op.created_at
            # One shared float for the whole intake unless the operation is old (24 B each).
            born = now - (wall - created) if created and wall - created > 1.0 else now
            sched.add(Entry(op, self.seq, born), now)
            self.seq += 1
            popleft()
        self.counters.add("accepted", len(accepted))
        self.out.intake(accepted)
        # On intake too, not only after a request: a stalled sender shows as a growing queue.
        self.recorder.queue_size(self.pending())
        if oversize:
            self.out.intake(oversize)
            detail = f"over max_batch_bytes={config.max_batch_bytes}"
            self.out.drop(oversize, "oversize", detail, defer=True)
            self.link.done(oversize)  # a final drop: its spool row (if any) goes too

    def _place_mark(self, mark: Mark) -> None:
        """A flush marker: it completes when everything accepted before it is finished."""
        mark.upto = self.seq
        mark.remaining = self.sched.size + max(0, mark.spill_upto - self.spill_out)
        if mark.remaining <= 0:
            mark.finish(True)
            return
        self.marks.append(mark)
        self.sched.flush_upto = max(self.sched.flush_upto, mark.upto)

    def settle(self, entries: list[Entry]) -> None:
        """Finished entries count down the flush markers waiting for them (lock held)."""
        if not self.marks:
            return
        for mark in self.marks:
            for entry in entries:
                spill = entry.spill
                if entry.seq < mark.upto or (spill is not None and spill < mark.spill_upto):
                    mark.remaining -= 1
            if mark.remaining <= 0:
                mark.finish(True)
        self.marks = [m for m in self.marks if not m.event.is_set()]

    def count_spool_losses(self) -> None:
        """What the spool dropped on its own (expired rows, failures) is counted like any drop."""
        for reason, count in self.link.losses().items():
            self.out.count(reason, count, {}, defer=True)

    # -- spill reload --------------------------------------------------------------------------

    def room(self) -> None:
        """Wake blocked submitters; reload spilled rows when memory is half empty (lock held)."""
        if self.space_waiters:
            self.space.notify(self.space_waiters)
        if (
            self.spilled
            and not self.reloading
            and self.sched.size + len(self.inbox) <= self.capacity // 2
            and not self.stopped
        ):
            self.reloading = True
            try:
                self.reload()
            finally:
                self.reloading = False

    def adopt(self, op: Operation, spill: int | None = None) -> None:
        """Queue an operation that already has its spool row (recovered or reloaded; lock held)."""
        now, wall = self.clock(), self.wall()
        created = op.created_at
        born = now - (wall - created) if created and wall > created else now
        self.sched.add(Entry(op, self.seq, born, spill=spill), now)
        self.seq += 1

    def reload(self) -> None:
        """Move spilled rows back into memory, oldest first (lock held: they must not be overtaken)."""
        self.intake(self.clock())  # anything in the inbox was accepted before the spill began
        ops = self.link.reload(max(1, self.capacity // 2))
        for op in ops:
            self.adopt(op, spill=self.spill_out)
            self.spill_out += 1
        # Invariant: the spilled count drops in the same critical section that queues them.
        self.spilled = max(0, self.spilled - len(ops)) if ops else 0
        self.work.notify_all()
