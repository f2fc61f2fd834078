"""The sender threads: take a batch the outage policy permits, send it, apply the verdict.

::

    core = Core(config, recorder, sender_factory, link_factory, clock, wall, rng)
    core.inbox.append(op); core.wake()     # what DeliveryEngine.submit does
    with core.lock:
        decision = core.step(now)          # (batch, is_probe) now, or seconds until one may be due
    core.send(*decision)                   # one request, then delivered/rejected/retried/expired

Each thread loops: under the lock it takes the inbox in (:class:`~cioguard.delivery.state.CoreState`),
sweeps operations past their patience, and asks the scheduler for a batch; it sends the batch
without the lock and applies the verdict (:mod:`cioguard.delivery.policy`): 2xx delivers (entries a
2xx body lists as errors are rejected), other 4xx reject, 429 waits without counting an attempt,
and 408/5xx/timeouts/resets/refusals retry after a full-jitter backoff, or, in outage mode, when
the endpoint's single probe succeeds. ``step`` needs no thread, so tests drive it on a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable

from cioguard.delivery.counters import logger
from cioguard.delivery.entries import born
from cioguard.delivery.policy import EndpointHealth, backoff_delay, expired, outage_cause, retry_reason
from cioguard.delivery.scheduler import Group
from cioguard.delivery.sender import Attempt
from cioguard.delivery.slices import handoff
from cioguard.delivery.state import INTAKE_NUDGE, CoreState
from cioguard.delivery.sweeps import expire
from cioguard.operations.model import Operation

#: When a loop on a caller's thread ends: (done, deadline on the core's clock).
Until = tuple[Callable[[], bool], float]
#: A ``Retry-After`` wait ends at least this long (or a tenth of the patience) before expiry.
EXPIRY_MARGIN = 30.0
#: Seconds between two sweeps for operations past their patience.
SWEEP_EVERY = 1.0


class Core(CoreState):
    # -- sender threads ------------------------------------------------------------------------

    def run(self, until: Until | None = None) -> None:
        """A sender thread's loop; with ``until`` (done, clock deadline), the loop on a thread of
        the caller's, until ``done()`` or the deadline: no sender thread could start."""
        while True:
            try:
                job = self._next(until)
                self.out.run_hooks()  # on_drop of intake/sweep drops, outside the lock
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
        allowed, until = self._health(group).permit(now)
        if allowed:
            # A 429's pause: its operations wait in the queue, not in a sender (not "in flight").
            paused = self.sender.paused(group.key, now)
            if paused > 0:
                return False, paused
        return allowed, until

    def step(self, now: float) -> tuple[list[Operation], bool] | float | None:
        """One scheduling decision (lock held): ``(batch, is_probe)`` to send now, else how long
        until something may be due (None: only new work or a finished request can tell)."""
        self.intake(now)
        if self.spilled:
            self.room()  # rows claimed from a dead process, or spilled while nothing was sent
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_EVERY
            self._sweep(now)
        if self.requests >= self.config.lanes:
            return None  # every lane waits for an answer: this thread only took calls in
        batch, wait = self.sched.take(now, self._permit)
        if batch is None:
            if self.sched.size:  # held operations (an outage, a pause) still expire on time
                sweep = max(0.0, self.next_sweep - now)
                return sweep if wait is None else min(wait, sweep)
            return wait
        endpoint = batch[0].endpoint
        self.labels.setdefault(endpoint.base_url, endpoint.label)
        probe = self._health(self.sched.groups[(endpoint.base_url, endpoint.auth_header)]).started(now)
        self.inflight += len(batch)
        self.requests += 1
        return batch, probe

    def _next(self, until: Until | None = None) -> tuple[list[Operation], bool] | None:
        with self.lock:
            while True:
                if self.stopped:
                    return None
                seen = self.bell.rings  # (before looking for work: see Doorbell)
                now = self.clock()
                end = self.deadline if self.closed else None
                if until is not None:
                    if until[0]():
                        return None
                    end = until[1] if end is None else min(end, until[1])
                if end is not None and now >= end:
                    return None  # shutdown() counts (or keeps in the spool) what is left
                decision = self.step(now)
                if isinstance(decision, tuple):
                    self.bell.ring()  # another sender may find more work
                    return decision
                if self.closed and self.sched.size == 0 and not self.inbox:
                    return None
                if decision is None and self.requests >= self.config.lanes:
                    # Every lane waits for an answer (a finished request notifies us): take
                    # calls in every INTAKE_NUDGE submits meanwhile, not at each one.
                    self.nudge_at = INTAKE_NUDGE
                elif decision is None:
                    # Invariant (lost wake-ups): idle is set before the inbox is re-checked;
                    # submit appends before it reads idle.
                    self.idle = True
                    if self.inbox:
                        self.idle = False
                        continue
                else:
                    self.nudge_at = self.batch_nudge
                if end is not None:  # never wait past the deadline (nor past a caller's own)
                    decision = end - now if decision is None else min(decision, end - now)
                self.lock.release()  # (held once: run() -> _next())
                try:
                    self.bell.wait(seen, decision)
                finally:
                    self.lock.acquire()
                self.idle = False

    def _sweep(self, now: float) -> None:
        self.count_spool_losses()
        config, patience, attempts = self.config, self.patience, self.sched.attempts

        def too_old(op: Operation) -> bool:
            return expired(now - born(op), attempts(op), patience, config.max_retries)

        gone = expire(self.sched, too_old, now)
        if gone:
            ops = [op for batch in gone for op in batch]
            self.out.drop(ops, "expired", defer=True)
            self.link.done(ops)
            self.settle(ops)
            self.room()

    def send(self, batch: list[Operation], probe: bool) -> None:
        """Make one request for ``batch`` (lock not held) and apply its verdict."""
        ops = batch
        outcome = self.sender.attempt(ops, self.sched.resends.get(batch[0], 0))
        now = self.clock()
        delivered: list[Operation] = []
        dropped: dict[str, list[Operation]] = {}
        finished: list[Operation] = []
        ended = began = False
        with self.lock:
            self.inflight -= len(batch)
            self.requests -= 1
            if self.abandoned:
                # Shutdown counted everything in flight at its deadline (dropped, outcome unknown).
                if outcome.verdict == "ok" and not outcome.stopped:
                    logger.info(
                        "cioguard: %d operation(s) counted as dropped (shutdown) were delivered after all",
                        len(batch),
                    )
                return
            health = self._health(self.sched.groups[(ops[0].endpoint.base_url, ops[0].endpoint.auth_header)])
            verdict = outcome.verdict
            if outcome.stopped:  # the deadline leaves no time for it: it waits for the close
                health.neutral(probe)
                deadline = self.deadline
                self.sched.retry(batch, now if deadline is None else max(now, deadline), now)
            elif verdict in ("ok", "final"):
                ended = health.succeeded()  # any answer but 408/429/5xx proves the endpoint is up
                self.outages -= ended
                if ended:
                    self.sched.release_waits(health_key(ops[0]), now)
                self.sched.finish(batch, now)
                finished = batch
                if verdict == "final":
                    dropped["rejected"] = ops
                else:
                    rejected = outcome.rejected
                    if rejected:
                        delivered = [op for i, op in enumerate(ops) if i not in rejected]
                        dropped["rejected"] = [ops[i] for i in sorted(rejected)]
                    else:
                        delivered = ops
            else:
                self.counters.add("retries")
                self.recorder.retry(outcome.name, retry_reason(outcome.status, outcome.error))
                if verdict == "throttled":  # flow control: never an attempt; the bucket waits
                    health.neutral(probe)
                    self.sched.retry(batch, now, now)
                else:
                    began = health.failed(now, probe)
                    self.outages += began
                    # Only a failure the endpoint's last answer did not share counts as an attempt
                    # (max_retries): a streak is an outage, which counts only as time.
                    counted = health.failures <= 1
                    finished = self._failed(batch, outcome.retry_after, health.outage, now, counted)
                    if finished:
                        dropped["expired"] = list(finished)
            if self.stopped:
                # shutdown() already counted the leftovers: what comes back now is counted here.
                gone = {id(op) for op in finished}
                rest = [op for op in batch if id(op) not in gone]
                for op in rest:
                    self.sched.remove(op, now)
                if rest and not self.link.on:
                    dropped.setdefault("shutdown", []).extend(rest)
                finished = finished + rest
            # They left the scheduler's size just now but count down flush markers only below,
            # after their metrics and spool rows: a marker placed in between must count them.
            self.unsettled += len(finished)
            # stats() (read under the lock) counts them now: never in no column at all.
            why = self.sender.last_rejection
            self.counters.add("delivered", len(delivered))
            for reason, lost in dropped.items():
                self.counters.drop(reason, len(lost), why if reason == "rejected" else "")
        label = self.labels.get(ops[0].endpoint.base_url, ops[0].endpoint.label)
        if began or ended:
            self.recorder.endpoint_outage(label, began)
            self._log_outage(label, began, outcome)
        handoff()  # a batch's bookkeeping comes in short GIL stretches (callers' p99.9)
        if delivered:
            self.out.delivered(delivered, now)
        for reason, lost in dropped.items():
            self.out.drop(lost, reason, counted=True)
        if self.link.on:
            self.link.done(delivered + [op for lost in dropped.values() for op in lost])
        handoff()
        with self.lock:
            self.unsettled -= len(finished)
            self.settle(finished)
            self.room()
            self.fill.observe(self.pending(), self.clock())
        # Every sender has work again when an outage is over; else e.g. the probe's result frees
        # the endpoint for a waiting sender.
        self.bell.ring(every=ended)
        self.recorder.queue_size(self.pending())
        if self.link.on:
            self.recorder.spool_operations(self.link.count())

    def _log_outage(self, label: str, began: bool, outcome: Attempt) -> None:
        """One warning with the cause and the fix when an endpoint goes quiet; info when back."""
        if not began:
            logger.info("cioguard: the %s endpoint answers again; delivery resumes", label)
            return
        what, fix = outage_cause(outcome.status, outcome.error, outcome.cause)
        logger.warning(
            "cioguard: the %s endpoint keeps failing (%s): operations wait in the queue and one "
            "probe request at a time checks for recovery. Fix: %s.",
            label,
            what,
            fix,
        )

    def _failed(
        self, batch: list[Operation], retry_after: float | None, outage: bool, now: float, counted: bool
    ) -> list[Operation]:
        """A transient failure: expired operations leave, the rest wait (lock held). ``counted``:
        it is an attempt (the endpoint's previous answer succeeded); else part of a streak."""
        config, patience, tries = self.config, self.patience, self.sched.tries
        attempts = tries.get(batch[0], 0) + 1
        if counted:
            for op in batch:
                tries[op] = tries.get(op, 0) + 1
        if outage:
            delay = 0.0  # the outage probe decides when anything is tried again
        else:
            delay = backoff_delay(attempts - 1, config.retry_base, config.retry_cap, self.rng)
            if retry_after is not None:
                # Invariant: a Retry-After wait ends before the batch's oldest operation expires
                # (with a margin), so a long one costs time, never the operations themselves.
                left = patience - (now - min(born(op) for op in batch))
                delay = max(delay, min(retry_after, left - min(EXPIRY_MARGIN, patience / 10)))
        self.sched.retry(batch, now + delay, now)
        # Operations of one person are consecutive, oldest first: the expired ones are queue heads.
        gone = [op for op in batch if expired(now - born(op), tries.get(op, 0), patience, config.max_retries)]
        for op in gone:
            self.sched.remove(op, now)
        return gone


def health_key(op: Operation) -> str:
    return op.endpoint.base_url
