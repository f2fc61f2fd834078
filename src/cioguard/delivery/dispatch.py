"""The sender side of the engine: intake of the caller queue, sender threads, outcomes.

A :class:`Core` is the engine's whole mutable state (rebuilt in a child after ``fork``). Callers
only ``inbox.append(op)`` (lock-free) and wake an idle sender; a sender thread, under the lock,
moves the inbox into the :class:`~cioguard.delivery.scheduler.Scheduler` (counting, spooling,
per-batch metrics), takes a batch the outage policy permits, sends it without the lock, and
applies the verdict: delivered, rejected, retried later (``not_before``), or expired.
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
from cioguard.delivery.policy import EndpointHealth, backoff_delay, expired, retry_reason
from cioguard.delivery.scheduler import Entry, Group, Scheduler
from cioguard.delivery.sender import BatchSender
from cioguard.operations.model import Operation
from cioguard.telemetry.recorder import Recorder

#: Seconds between two sweeps for operations past their patience.
SWEEP_EVERY = 1.0
_NEVER = 1 << 62


class Core:
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
        self.nudge_at = _NEVER
        self.capacity = config.max_queue_size
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

    # -- waking (callers) ----------------------------------------------------------------------

    def wake(self) -> None:
        with self.lock:
            self.idle = False
            self.nudge_at = _NEVER
            if not self.threads and not self.stopped:
                self._start()
            self.work.notify()

    def _start(self) -> None:
        self.recorder.queue_capacity(self.capacity)
        for index in range(self.config.lanes):
            thread = threading.Thread(target=self.run, name=f"cioguard-delivery-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()

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
        for _ in range(taken):
            item = inbox.popleft()
            if type(item) is Mark:
                self._place_mark(item)
                continue
            op: Operation = item
            if op.route == "v2" and op.size > limit:
                oversize.append(op)
                continue
            accepted.append(op)
            if keep:
                link.keep(op)
            created = op.created_at
            born = now - (wall - created) if created and wall > created else now
            sched.add(Entry(op, self.seq, born), now)
            self.seq += 1
        self.counters.add("accepted", len(accepted))
        self.out.intake(accepted)
        if oversize:
            self.out.intake(oversize)
            self.out.drop(oversize, "oversize", f"over max_batch_bytes={config.max_batch_bytes}")

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

    # -- sender threads ------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            try:
                job = self._next()
                if job is None:
                    return
                self.send(*job)
            except Exception as exc:  # never let a sender thread die
                self.counters.error("sender", exc)

    def _health(self, group: Group) -> EndpointHealth:
        health = self.health.get(group.health_key)
        if health is None:
            health = self.health[group.health_key] = EndpointHealth(
                self.config.retry_base, self.config.retry_cap, self.rng
            )
        return health

    def _permit(self, group: Group, now: float) -> tuple[bool, float | None]:
        return self._health(group).permit(now)

    def step(self, now: float) -> tuple[list[Entry], bool] | float | None:
        """One scheduling decision (lock held): ``(batch, is_probe)`` to send now, else how long
        until something may be due (None: only new work or a finished request can tell)."""
        self.intake(now)
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_EVERY
            self._sweep(now)
        batch, wait = self.sched.take(now, self._permit)
        if batch is None:
            return wait
        endpoint = batch[0].op.endpoint
        self.labels.setdefault(endpoint.base_url, endpoint.label)
        probe = self._health(self.sched.groups[(endpoint.base_url, endpoint.auth_header)]).started(now)
        self.inflight += len(batch)
        return batch, probe

    def _next(self) -> tuple[list[Entry], bool] | None:
        with self.lock:
            while True:
                if self.stopped:
                    return None
                now = self.clock()
                if self.closed and self.deadline is not None and now >= self.deadline:
                    return None  # shutdown() counts (or keeps in the spool) what is left
                decision = self.step(now)
                if isinstance(decision, tuple):
                    self.work.notify()  # another sender may find more work
                    return decision
                if self.closed and self.sched.size == 0 and not self.inbox:
                    return None
                if decision is None:
                    # Invariant (lost wake-ups): idle is set before the inbox is re-checked;
                    # submit appends before it reads idle.
                    self.idle = True
                    if self.inbox:
                        self.idle = False
                        continue
                else:
                    self.nudge_at = max(1, self.config.max_batch_operations // 2)
                self.work.wait(decision)
                self.idle = False

    def count_spool_losses(self) -> None:
        """What the spool dropped on its own (expired rows, failures) is counted like any drop."""
        for reason, count in self.link.losses().items():
            self.out.count(reason, count, {})

    def _sweep(self, now: float) -> None:
        self.count_spool_losses()
        config, patience = self.config, self.patience

        def too_old(entry: Entry) -> bool:
            return expired(now - entry.born, entry.attempts, patience, config.max_retries)

        gone = self.sched.expire(too_old, now)
        if gone:
            ops = [entry.op for batch in gone for entry in batch]
            self.out.drop(ops, "expired")
            self.link.done(ops)
            self.settle([entry for batch in gone for entry in batch])
            self.room()

    def send(self, batch: list[Entry], probe: bool) -> None:
        """Make one request for ``batch`` (lock not held) and apply its verdict."""
        ops = [entry.op for entry in batch]
        outcome = self.sender.attempt(ops, batch[0].attempts)
        now = self.clock()
        delivered: list[Operation] = []
        dropped: dict[str, list[Operation]] = {}
        finished: list[Entry] = []
        ended = began = False
        with self.lock:
            self.inflight -= len(batch)
            health = self._health(self.sched.groups[(ops[0].endpoint.base_url, ops[0].endpoint.auth_header)])
            verdict = outcome.verdict
            if outcome.stopped:
                health.neutral(probe)
                self.sched.retry(batch, now, now)
            elif verdict in ("ok", "final"):
                ended = health.succeeded()  # any answer but 408/429/5xx proves the endpoint is up
                if ended:
                    self.sched.release_waits(health_key(ops[0]), now)
                self.sched.finish(batch, now)
                finished = batch
                if verdict == "final":
                    dropped["rejected"] = ops
                else:
                    rejected = outcome.rejected
                    delivered = [op for i, op in enumerate(ops) if i not in rejected]
                    if rejected:
                        dropped["rejected"] = [ops[i] for i in sorted(rejected)]
            else:
                self.counters.add("retries")
                self.recorder.retry(outcome.name, retry_reason(outcome.status, outcome.error))
                if verdict == "throttled":  # flow control: never an attempt; the bucket waits
                    health.neutral(probe)
                    self.sched.retry(batch, now, now)
                else:
                    began = health.failed(now, probe)
                    finished = self._failed(batch, outcome.retry_after, health.outage, now)
                    if finished:
                        dropped["expired"] = [entry.op for entry in finished]
            if self.stopped:
                # shutdown() already counted the leftovers: what comes back now is counted here.
                gone = {id(entry) for entry in finished}
                rest = [entry for entry in batch if id(entry) not in gone]
                for entry in rest:
                    self.sched.remove(entry, now)
                if rest and not self.link.on:
                    dropped.setdefault("shutdown", []).extend(entry.op for entry in rest)
                finished = finished + rest
        label = self.labels.get(ops[0].endpoint.base_url, ops[0].endpoint.label)
        if began or ended:
            self.recorder.endpoint_outage(label, began)
        if delivered:
            self.out.delivered(delivered, now)
        for reason, lost in dropped.items():
            self.out.drop(lost, reason, self.sender.last_rejection if reason == "rejected" else "")
        self.link.done(delivered + [op for lost in dropped.values() for op in lost])
        with self.lock:
            self.settle(finished)
            self.room()
            if ended:
                self.work.notify_all()  # the outage is over: every sender has work again
            else:
                self.work.notify()  # e.g. the probe's result frees the endpoint for a waiting sender
        self.recorder.queue_size(self.pending())
        if self.link.on:
            self.recorder.spool_operations(self.link.count())

    def _failed(self, batch: list[Entry], retry_after: float | None, outage: bool, now: float) -> list[Entry]:
        """A transient failure: expired entries leave, the rest wait (lock held)."""
        config, patience = self.config, self.patience
        attempts = batch[0].attempts + 1
        for entry in batch:
            entry.attempts += 1
        if outage:
            delay = 0.0  # the outage probe decides when anything is tried again
        else:
            delay = backoff_delay(attempts - 1, config.retry_base, config.retry_cap, self.rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
        self.sched.retry(batch, now + delay, now)
        # Entries of one person are consecutive, oldest first: the expired ones are queue heads.
        gone = [e for e in batch if expired(now - e.born, e.attempts, patience, config.max_retries)]
        for entry in gone:
            self.sched.remove(entry, now)
        return gone

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


def health_key(op: Operation) -> str:
    return op.endpoint.base_url


def now_wall() -> float:
    return time.time()
