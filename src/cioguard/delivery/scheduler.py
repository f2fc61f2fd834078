"""Per-person scheduling: which accepted operations may be sent next, and in which batch.

::

    sched = Scheduler(config)
    sched.add(op, now)                       # in acceptance order (complete, ``_enqueued_at`` set)
    batch, wait = sched.take(now, permit)    # a batch to send now, or seconds until one may be due
    sched.finish(batch, now)                 # delivered / dropped: gone for good
    sched.retry(batch, not_before, now)      # transient failure: back to the head of each person

Ordering is per person (``op.shard_key``; an empty key has no order), not per queue: each person
has a FIFO of operations, and a person is never in flight twice, so one person's operations arrive
in order while a v1-only operation (an anonymous event, an entry over 32 KB) is sent on its own
without ending anyone else's v2 batch. Work is grouped per endpoint (base URL + credentials): a
batch never mixes endpoints. A ``merge_customers`` operation is a barrier of its endpoint: it is
sent after everything accepted before it and before anything accepted after it.

No object is made per queued operation (see :mod:`cioguard.delivery.entries`). Not thread-safe:
the engine calls it under its lock. No clock is read here (times are passed in).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.delivery.entries import Group, PersonKey, _body, is_barrier, is_single, person, total_size
from cioguard.delivery.slices import Budget
from cioguard.operations.model import Operation

__all__ = ["Group", "Permit", "Scheduler"]

#: ``permit(group, now) -> (allowed, wait)`` asks the outage policy whether a request may start.
Permit = Callable[["Group", float], tuple[bool, float | None]]
_NO_KEY = ""  # the timer key of a barrier (never a person: an empty shard key uses the operation)


class Scheduler:
    def __init__(self, config: DeliveryConfig) -> None:
        self._config = config
        self.groups: dict[tuple[str, str], Group] = {}
        #: The last endpoint seen by add() and its group (groups are never removed).
        self._last_endpoint: object = None
        self._last_group: tuple[tuple[str, str], Group] = (("", ""), Group(("", "")))
        self._timers: list[tuple[float, int, PersonKey, tuple[str, str]]] = []
        self._tick = 0
        #: Operations held in memory (queued, waiting or in flight).
        self.size = 0
        #: Flush epoch: raised by each flush marker taken in (operations before it are older).
        self.epoch = 0
        #: Send partial batches of groups whose accumulation began before this epoch.
        self.flush_upto = 0
        #: Everything is due now (shutdown).
        self.closing = False
        self.inflight_barriers: set[int] = set()
        #: Failed attempts of the operations that had any (429s excluded); most have none.
        self.tries: dict[Operation, int] = {}
        #: Requests made again for an operation, for any reason (429s included): the span's
        #: ``http.request.resend_count``.
        self.resends: dict[Operation, int] = {}
        #: v1-only operations in flight. Invariant: at most ``singles_max``, so one sender thread
        #: is always left for v2 batches (hundreds of operations per request, never starved by
        #: anonymous events that spend the request budget one operation at a time).
        self.singles_out = 0
        self.singles_max = max(1, config.lanes - 1)
        #: A batch this large goes at once: ``max_batch_operations``, or a quarter of a smaller
        #: queue (a batch that can never fill would wait ``flush_interval`` while callers are pressed).
        self.full_at = max(1, min(config.max_batch_operations, config.max_queue_size // 4))

    def attempts(self, op: Operation) -> int:
        return self.tries.get(op, 0)

    # -- adding ------------------------------------------------------------------------------

    def add(self, op: Operation, now: float) -> None:
        endpoint = op.endpoint
        if endpoint is self._last_endpoint:  # (the usual case: one endpoint object per client)
            gkey, group = self._last_group
        else:
            gkey = (endpoint.base_url, endpoint.auth_header)
            found = self.groups.get(gkey)
            if found is None:
                found = self.groups[gkey] = Group(gkey)
            group = found
            self._last_endpoint, self._last_group = endpoint, (gkey, group)
        self.size += 1
        if group.barrier is not None or op.method == "merge_customers" or group.count == 0:
            self._place(group, gkey, op, now)
            return
        # _place's common case, inlined (once per accepted operation).
        group.count += 1
        group.bytes += len(op._body)
        if op._request[0] != "v2":
            group.singles += 1
        key = op._shard_key or op
        queue = group.people.get(key)
        if queue is None:
            group.people[key] = deque((op,))
            self._refresh(group, gkey, key, now)
        else:
            queue.append(op)

    def _place(self, group: Group, gkey: tuple[str, str], op: Operation, now: float) -> None:
        if group.barrier is not None:
            group.held.append(op)  # invariant: nothing overtakes a pending merge
            return
        if is_barrier(op):
            group.barrier = op
            group.barrier_wait = 0.0
            return
        if group.count == 0:
            group.first_at, group.first_epoch = now, self.epoch
        group.count += 1
        group.bytes += len(op._body)
        group.singles += is_single(op)
        key = person(op)
        queue = group.people.get(key)
        if queue is None:
            queue = group.people[key] = deque()
        queue.append(op)
        if len(queue) == 1:
            self._refresh(group, gkey, key, now)

    def _refresh(self, group: Group, gkey: tuple[str, str], key: PersonKey, now: float) -> None:
        """Put ``key`` in a ready set if its head may be sent now, or on a timer."""
        if key in group.busy:
            return
        queue = group.people.get(key)
        if not queue:
            return
        wait = group.wait.get(key)
        if wait is not None and wait > now:
            self._tick += 1
            heapq.heappush(self._timers, (wait, self._tick, key, gkey))
        elif is_single(queue[0]):
            group.ready_single[key] = None
        else:
            group.ready_v2[key] = None

    # -- taking --------------------------------------------------------------------------------

    def take(self, now: float, permit: Permit) -> tuple[list[Operation] | None, float | None]:
        """The next batch to send (its people are now busy), or None and how long until one may be
        ready (None = only new work or a finished request can change that)."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, key, gkey = heapq.heappop(timers)
            group = self.groups.get(gkey)
            if group is not None:
                self._refresh(group, gkey, key, now)
        wait = timers[0][0] - now if timers else None
        for gkey, group in self.groups.items():
            if not (group.ready_single or group.ready_v2 or group.barrier is not None):
                continue
            allowed, until = permit(group, now)
            if not allowed:
                wait = _sooner(wait, until)
                continue
            # A due v2 batch first (it drains the queue), then a single within its share.
            batch = self._take_barrier(group, now)
            if batch is None and group.ready_v2:
                due = self._due(group, now)
                if due > 0:
                    wait = _sooner(wait, due)
                else:
                    batch = self._take_v2(group, gkey, now)
            if batch is None and group.ready_single and self.singles_out < self.singles_max:
                batch = self._take_single(group)
            if batch:
                # Fairness between workspaces: the group that just sent goes to the back.
                self.groups[gkey] = self.groups.pop(gkey)
                return batch, 0.0
        return None, wait

    def _take_barrier(self, group: Group, now: float) -> list[Operation] | None:
        barrier = group.barrier
        if barrier is None or group.count or id(barrier) in self.inflight_barriers:
            return None
        if group.barrier_wait > now:
            return None
        self.inflight_barriers.add(id(barrier))
        return [barrier]

    def _take_single(self, group: Group) -> list[Operation] | None:
        ready = group.ready_single
        while ready:
            key = next(iter(ready))
            del ready[key]
            queue = group.people.get(key)
            if queue and key not in group.busy and is_single(queue[0]):
                group.busy[key] = 1
                self.singles_out += 1
                return [queue[0]]
        return None

    def _due(self, group: Group, now: float) -> float:
        """0 when the group's v2 operations should go now, else seconds until they should."""
        config = self._config
        if (
            self.closing
            or group.count >= self.full_at
            or group.bytes + group.count + ENVELOPE_BYTES > config.max_batch_bytes
            or group.first_epoch < self.flush_upto
        ):
            return 0.0
        return max(0.0, group.first_at + config.flush_interval - now)

    def _take_v2(self, group: Group, gkey: tuple[str, str], now: float) -> list[Operation] | None:
        limit_ops, limit_bytes = self._config.max_batch_operations, self._config.max_batch_bytes
        batch: list[Operation] = []
        size = ENVELOPE_BYTES
        ready, people, busy = group.ready_v2, group.people, group.busy
        budget = Budget()  # a 2 000-operation batch is picked in short GIL stretches
        whole = not group.singles  # no v1-only operation queued: FIFOs may go in whole
        while ready:
            key = next(iter(ready))
            queue = people.get(key)
            if whole and queue and len(batch) + len(queue) <= limit_ops:
                grown = size + sum(map(len, map(_body, queue))) + len(queue)  # (C-level)
                if grown <= limit_bytes:
                    batch.extend(queue)
                    size = grown
                    del ready[key]
                    busy[key] = len(queue)
                    budget.tick()
                    continue
            took = 0
            full = False
            for op in queue or ():  # consecutive v2 operations of this person, in order
                if op._request[0] != "v2":
                    break
                grown = size + len(op._body) + 1
                if len(batch) >= limit_ops or grown > limit_bytes:
                    full = True
                    break
                batch.append(op)
                size = grown
                took += 1
            if full and not took:
                break  # still ready: the next batch starts with this person
            del ready[key]
            if took:
                busy[key] = took
            elif queue and key not in busy:
                self._refresh(group, gkey, key, now)
            if full:
                break
            budget.tick()
        group.first_at = now  # what is left waits for the next interval unless full or flushed
        return batch or None

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, batch: list[Operation], now: float, inflight: bool = True) -> None:
        """The batch is over for good (delivered or dropped): forget it, wake who waited on it.
        ``inflight=False``: heads of people not in flight (expired, evicted, left at shutdown)."""
        first = batch[0]
        gkey = _gkey(first)
        group = self.groups[gkey]
        self.size -= len(batch)
        tries, resends = self.tries, self.resends
        if tries:
            for op in batch:
                tries.pop(op, None)
        if resends:
            for op in batch:
                resends.pop(op, None)
        if first is group.barrier:
            self.inflight_barriers.discard(id(first))
            group.barrier = None
            while group.held and group.barrier is None:
                self._place(group, gkey, group.held.popleft(), now)
            if group.count:  # they waited behind the merge already: due now, not an interval on
                group.first_at = min(group.first_at, now - self._config.flush_interval)
            return
        if is_single(first):  # (a batch is one v1-only operation or v2 operations only)
            group.singles -= 1
            if inflight:
                self.singles_out -= 1
        people, busy, wait = group.people, group.busy, group.wait
        group.count -= len(batch)
        group.bytes -= total_size(batch)
        index, end = 0, len(batch)
        budget = Budget()  # up to 2 000 people per batch: short GIL stretches
        while index < end:  # one run of consecutive operations per person
            budget.tick()
            key = person(batch[index])
            queue = people[key]
            # Invariant: a batch holds the heads of its people's FIFOs, in order.
            assert queue[0] is batch[index]
            run = max(1, busy.pop(key, 1)) if inflight else 1
            index += run
            wait.pop(key, None)
            if run >= len(queue):  # (the usual case: the whole FIFO went in this batch)
                del people[key]
                continue
            for _ in range(run):
                queue.popleft()
            self._refresh(group, gkey, key, now)

    def retry(self, batch: list[Operation], not_before: float, now: float) -> None:
        """Transient failure: the operations stay at the head of their people, due at ``not_before``."""
        first = batch[0]
        resends = self.resends
        for op in batch:  # (retries are rare: a dict write per operation is fine here)
            resends[op] = resends.get(op, 0) + 1
        gkey = _gkey(first)
        group = self.groups[gkey]
        if first is group.barrier:
            self.inflight_barriers.discard(id(first))
            group.barrier_wait = not_before
            if not_before > now:
                self._tick += 1
                heapq.heappush(self._timers, (not_before, self._tick, _NO_KEY, gkey))
            return
        if is_single(first):
            self.singles_out -= 1
        for key in dict.fromkeys(map(person, batch)):
            group.busy.pop(key, None)
            if not_before > now:
                group.wait[key] = not_before
            else:
                group.wait.pop(key, None)
            self._refresh(group, gkey, key, now)

    def release_waits(self, health_key: str, now: float) -> None:
        """An outage ended: whatever of that endpoint was backing off is due now."""
        for gkey, group in self.groups.items():
            if group.health_key != health_key:
                continue
            group.barrier_wait = 0.0
            for key in [key for key, when in group.wait.items() if when > now]:
                del group.wait[key]
                self._refresh(group, gkey, key, now)

    def remove(self, op: Operation, now: float) -> None:
        """Take a queue head not in flight out (evicted, expired, left behind at shutdown)."""
        self.finish([op], now, inflight=False)


def _gkey(op: Operation) -> tuple[str, str]:
    endpoint = op.endpoint
    return (endpoint.base_url, endpoint.auth_header)


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
