"""The engine's mutable state and everything done with it under its lock, apart from sending.

:class:`CoreState` holds the caller queue (``inbox``: callers only ``append`` to it), the
:class:`~cioguard.delivery.scheduler.Scheduler`, counters, flush markers and the spill
bookkeeping; :class:`cioguard.delivery.dispatch.Core` adds the sender threads. A child process
after ``fork`` gets a new one. Intake runs on a sender thread, in queue order: it counts, writes
spool rows, records per-intake metrics and hands each (completed) operation to the scheduler.
"""

from __future__ import annotations

import random as _random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.doorbell import Doorbell
from cioguard.delivery.durable import SpoolLink
from cioguard.delivery.fill import FillWatch
from cioguard.delivery.outcomes import Mark, Outcomes
from cioguard.delivery.policy import EndpointHealth
from cioguard.delivery.scheduler import Scheduler
from cioguard.delivery.sender import BatchSender
from cioguard.delivery.slices import Budget
from cioguard.operations.deferred import take_in
from cioguard.operations.model import Operation
from cioguard.telemetry.recorder import Recorder
from cioguard.threads import daemon_thread

NEVER = 1 << 62
#: Seconds in the caller queue after which an operation's acceptance time is its own (derived from
#: ``created_at``) rather than the intake's shared one (delivery lag and patience stay exact).
WAITED = 0.1
#: Inbox length at which a submit wakes the spare thread while every request is in flight.
INTAKE_NUDGE = 256
#: Seconds between two tries to start the sender threads after a start failed.
START_RETRY = 1.0
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
        #: Wakes idle sender threads without the engine lock (callers never wait for it).
        self.bell = Doorbell()
        self.space = threading.Condition(self.lock)
        self.inbox: deque[Any] = deque()
        #: A sender thread waits with nothing to do: the next submit must wake it.
        self.idle = True
        #: Inbox length at which a submit wakes a sender (waiting for a partial batch, or for answers).
        self.nudge_at = NEVER
        self.capacity = config.max_queue_size
        #: From this many queued operations a submit yields the GIL to the sender once, and from
        #: ``brake_at`` it pauses a millisecond (backpressure before ``overflow`` applies).
        self.high_water = max(1, config.max_queue_size // 2)
        self.brake_at = max(1, config.max_queue_size * 7 // 8)
        #: How long the queue has stayed nearly full (CIO011), seen at each change of level.
        self.fill = FillWatch(config.max_queue_size)
        #: Inbox length at which a submit wakes a sender waiting for a partial batch. Invariant:
        #: below the high water, so callers are never pressed while a sender sleeps waiting for a
        #: batch that a small queue cannot fill (the scheduler sends a quarter of it at once).
        self.batch_nudge = max(1, min(config.max_batch_operations // 2, self.high_water // 2))
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
        #: Sender threads that started. Invariant: only started ones are listed, so a failed start
        #: is tried again at the next wake() (and a flush or the close sends meanwhile: run()).
        self.threads: list[threading.Thread] = []
        self.start_failed = False
        self.next_start = 0.0  # (clock) the earliest retry after a failed start
        self.closed = False
        self.stopped = False
        #: Set by the close when it counted the operations still in flight at its deadline as
        #: dropped: the ends of their requests count nothing more (nor touch the scheduler).
        self.abandoned = False
        #: Flush tags of operations taken in while a marker waits: the scheduler epoch of an
        #: intake, or ``-(ordinal + 1)`` of a reloaded spilled row. Untagged operations are older
        #: than every waiting marker. Emptied when no marker waits (no per-operation cost else).
        self.tags: dict[Operation, int] = {}
        self.inflight = 0
        #: Requests in flight. Invariant: at most ``config.lanes``; the engine runs one thread
        #: more, so while every request waits for an answer one thread still takes calls in
        #: (they are kept compact, completed and checked, not as the callers left them).
        self.requests = 0
        self.marks: list[Mark] = []
        #: Operations a request finished (gone from ``sched.size``) that have not yet counted down
        #: the flush markers (``settle`` runs after their metrics and spool rows, lock released in
        #: between). Invariant: a marker's ``remaining`` counts them, or it would end too early.
        self.unsettled = 0
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
        """Wake a sender (lock-free but for the first call, which starts the threads)."""
        self.idle = False
        self.nudge_at = NEVER
        if not self.threads and not self.stopped:
            with self.lock:
                if not self.threads and not self.stopped and self.clock() >= self.next_start:
                    self._start()
                if not self.threads:
                    # No sender: the next call wakes again, and tries a start once a second.
                    self.idle = True
        self.bell.ring()

    def _start(self) -> None:
        self.recorder.queue_capacity(self.capacity)
        for index in range(self.config.lanes + 1):
            # daemon_thread blocks process signals first: SIGTERM/SIGINT reach the main thread.
            thread = daemon_thread(self.run, f"cioguard-delivery-{index}")
            try:
                thread.start()
            except RuntimeError as exc:  # never raised to a caller: its call is queued already
                if not self.start_failed:
                    self.start_failed = True
                    logger.warning(
                        "cioguard: could not start a sender thread (%s); calls stay queued, and "
                        "flush() and the exit flush send them on their own thread",
                        exc,
                    )
                self.next_start = self.clock() + START_RETRY
                return  # (Python 3.12.0-3.12.1 during interpreter shutdown; a pids limit)
            self.threads.append(thread)

    def run(self, until: tuple[Callable[[], bool], float] | None = None) -> None:
        """A sender thread's body (see :class:`cioguard.delivery.dispatch.Core`)."""
        raise NotImplementedError

    def brake(self, queued: int) -> float:
        """A caller's pause at ``queued`` (from ``high_water``): 0 (a GIL hand-off) below
        ``brake_at``, then 1 ms rising to :data:`BRAKE_MAX` at capacity; none while an endpoint
        is in outage mode or waits out a 429, nor while no sender thread could start."""
        stalled = self.outages or (self.start_failed and not self.threads)
        if queued < self.brake_at or stalled or self.sender.pausing(self.clock()):
            return 0.0  # (nothing drains meanwhile: pausing would only slow the app)
        room = max(1, self.capacity - self.brake_at)
        return BRAKE_MIN + (BRAKE_MAX - BRAKE_MIN) * min(1.0, (queued - self.brake_at) / room)

    def pending(self) -> int:
        # Once stopped, what the scheduler still holds was counted (dropped, or kept in the spool).
        return len(self.inbox) + (0 if self.stopped else self.sched.size) + self.spilled

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
        tags, marks = self.tags, self.marks
        stamps: dict[int, float] = {}
        popleft = inbox.popleft
        # Callers share the GIL with this loop (and completing an operation may run deferred
        # pitfall rules): hand it over between short time slices, so a call never waits for a
        # whole intake pass (p99.9 caller latency). Callers append without the lock meanwhile.
        budget = Budget()
        tick = budget.tick
        for _ in range(taken):
            tick()
            # Invariant: an operation leaves the inbox only after it is in the scheduler, so a
            # caller's lock-free ``len(inbox) + sched.size`` never under-counts (the bound holds).
            item = inbox[0]
            if type(item) is Mark:
                self._place_mark(item)
                marks = self.marks
                popleft()
                continue
            try:
                if type(item) is tuple:  # a caller's Snapshot (the fast path): made an Operation here
                    item = take_in(item)  # (complete: lane, ULID, the checks queued before it)
                op: Operation = item
                if op._pending is not None:
                    op._complete()  # its lane, ULID and deferred pitfall rules, in queue order
            except Exception as exc:  # one call the sender cannot encode never stalls the queue
                popleft()
                self._unreadable(item, exc)
                continue
            if op._request[0] == "v2" and len(op._body) > limit:
                oversize.append(op)
                popleft()
                continue
            accepted.append(op)
            if keep:
                link.keep(op)
            created = op.created_at
            # One shared float for the whole intake unless the operation is old (24 B each).
            op._enqueued_at = now - (wall - created) if created and wall - created > WAITED else now
            if created:
                # Calls of one millisecond share one float (24 B less per queued operation); the
                # event's ULID holds the same millisecond.
                ms = int(created * 1000.0)
                shared = stamps.get(ms)
                if shared is None:
                    shared = stamps[ms] = (ms + 0.5) / 1000.0  # (mid-millisecond: int(x * 1000) is ms)
                op.created_at = shared
            if marks:
                tags[op] = sched.epoch
            sched.add(op, now)
            popleft()
        self.counters.add("accepted", len(accepted))
        self.out.intake(accepted)
        # On intake too, not only after a request: a stalled sender shows as a growing queue.
        pending = self.pending()
        self.recorder.queue_size(pending)
        self.fill.observe(pending, now)
        if oversize:
            self.out.intake(oversize)
            detail = f"over max_batch_bytes={config.max_batch_bytes}"
            self.out.drop(oversize, "oversize", detail, defer=True)
            self.link.done(oversize)  # a final drop: its spool row (if any) goes too

    def _unreadable(self, item: Any, exc: Exception) -> None:
        """A queued call whose entry cannot be made (a bug: the caller's checks let it through):
        counted as accepted and dropped (``rejected``, as Customer.io would), logged."""
        method = str(item[1]) if type(item) is tuple else str(getattr(item, "method", ""))
        self.counters.add("accepted")
        self.out.count("rejected", 1, {method: 1}, f"could not be encoded: {exc}", defer=True)
        self.counters.error("intake", exc)

    def _place_mark(self, mark: Mark) -> None:
        """A flush marker: it completes when everything accepted before it is finished."""
        sched = self.sched
        sched.epoch += 1
        mark.upto = sched.epoch  # operations taken in before it have a lower epoch
        mark.remaining = sched.size + self.unsettled + max(0, mark.spill_upto - self.spill_out)
        if mark.remaining <= 0:
            mark.finish(True)
            return
        self.marks.append(mark)
        sched.flush_upto = max(sched.flush_upto, mark.upto)

    def settle(self, ops: list[Operation]) -> None:
        """Finished operations count down the flush markers waiting for them (lock held)."""
        if not self.marks:
            if self.tags:
                self.tags.clear()  # (the markers went another way: shutdown)
            return
        tags = self.tags
        found = [tags.pop(op, None) for op in ops] if tags else [None] * len(ops)
        untagged = found.count(None)  # older than every waiting marker: they count for each
        for mark in self.marks:
            counted = untagged
            if untagged < len(found):
                for tag in found:
                    if tag is not None and (0 <= tag < mark.upto or -tag - 1 < mark.spill_upto):
                        counted += 1
            mark.remaining -= counted
            if mark.remaining <= 0:
                mark.finish(True)
        self.marks = [m for m in self.marks if not m.event.is_set()]
        if not self.marks:
            tags.clear()

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
        if op._pending is not None:
            op._complete()  # a recovered row may still need its lane (as intake does)
        op._enqueued_at = born
        if self.marks and spill is not None:
            self.tags[op] = -(spill + 1)
        self.sched.add(op, now)

    def reload(self) -> None:
        """Move spilled rows back into memory, oldest first (lock held: they must not be overtaken)."""
        self.intake(self.clock())  # anything in the inbox was accepted before the spill began
        ops = self.link.reload(max(1, self.capacity // 2))
        for op in ops:
            self.adopt(op, spill=self.spill_out)
            self.spill_out += 1
        # Invariant: the spilled count drops in the same critical section that queues them.
        self.spilled = max(0, self.spilled - len(ops)) if ops else 0
        self.bell.ring(every=True)
