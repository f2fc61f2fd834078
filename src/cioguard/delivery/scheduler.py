"""Per-person scheduling: which accepted operations may be sent next, and in which batch.

::

    sched = Scheduler(config)
    sched.add(Entry(op, seq, born))          # in acceptance order
    batch, wait = sched.take(now, permit)    # a batch to send now, or seconds until one may be due
    sched.finish(batch)                      # delivered / dropped: gone for good
    sched.retry(batch, not_before)           # transient failure: back to the head of each person

Ordering is per person (``op.shard_key``; an empty key has no order), not per queue: each person
has a FIFO, and a person is never in flight twice, so one person's operations arrive in order
while a v1-only operation (an anonymous event, an entry over 32 KB) is sent on its own without
ending anyone else's v2 batch. Work is grouped per endpoint (base URL + credentials): a batch
never mixes endpoints. A ``merge_customers`` operation is a barrier of its endpoint: it is sent
after everything accepted before it and before anything accepted after it.

Not thread-safe: the engine calls it under its lock. No clock is read here (times are passed in).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.delivery.entries import Entry, Group

__all__ = ["Entry", "Group", "Permit", "Scheduler"]

#: ``permit(group, now) -> (allowed, wait)`` asks the outage policy whether a request may start.
Permit = Callable[["Group", float], tuple[bool, float | None]]


class Scheduler:
    def __init__(self, config: DeliveryConfig) -> None:
        self._config = config
        self.groups: dict[tuple[str, str], Group] = {}
        self._timers: list[tuple[float, int, str, tuple[str, str]]] = []
        self._tick = 0
        #: Entries held in memory (queued, waiting or in flight).
        self.size = 0
        #: Send partial batches of groups whose oldest entry is below this sequence number.
        self.flush_upto = 0
        #: Everything is due now (shutdown).
        self.closing = False
        self.inflight_barriers: set[int] = set()
        #: v1-only operations in flight. Invariant: at most ``singles_max``, so one sender thread
        #: is always left for v2 batches (hundreds of operations per request, never starved by
        #: anonymous events that spend the request budget one operation at a time).
        self.singles_out = 0
        self.singles_max = max(1, config.lanes - 1)

    # -- adding ------------------------------------------------------------------------------

    def add(self, entry: Entry, now: float) -> None:
        endpoint = entry.op.endpoint
        gkey = (endpoint.base_url, endpoint.auth_header)
        group = self.groups.get(gkey)
        if group is None:
            group = self.groups[gkey] = Group(endpoint.base_url)
        self.size += 1
        self._place(group, gkey, entry, now)

    def _place(self, group: Group, gkey: tuple[str, str], entry: Entry, now: float) -> None:
        if group.barrier is not None:
            group.held.append(entry)  # invariant: nothing overtakes a pending merge
            return
        if entry.barrier:
            group.barrier = entry
            return
        if group.count == 0:
            group.first_at, group.first_seq = now, entry.seq
        group.count += 1
        group.bytes += entry.size
        queue = group.people.get(entry.key)
        if queue is None:
            queue = group.people[entry.key] = deque()
        queue.append(entry)
        if len(queue) == 1:
            self._refresh(group, gkey, entry.key, now)

    def _refresh(self, group: Group, gkey: tuple[str, str], key: str, now: float) -> None:
        """Put ``key`` in a ready set if its head may be sent now, or on a timer."""
        if key in group.busy:
            return
        queue = group.people.get(key)
        if not queue:
            return
        head = queue[0]
        if head.not_before > now:
            self._tick += 1
            heapq.heappush(self._timers, (head.not_before, self._tick, key, gkey))
        elif head.single:
            group.ready_single[key] = None
        else:
            group.ready_v2[key] = None

    # -- taking --------------------------------------------------------------------------------

    def take(self, now: float, permit: Permit) -> tuple[list[Entry] | None, float | None]:
        """The next batch to send (its people are now busy), or None and how long until one may be
        ready (None = only new work or a finished request can change that)."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, key, gkey = heapq.heappop(timers)
            group = self.groups.get(gkey)
            if group is not None:
                self._refresh(group, gkey, key, now)
        wait = timers[0][0] - now if timers else None
        for group in self.groups.values():
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
                    batch = self._take_v2(group, now)
            if batch is None and group.ready_single and self.singles_out < self.singles_max:
                batch = self._take_single(group)
            if batch:
                # Fairness between workspaces: the group that just sent goes to the back.
                gkey = _gkey(batch[0])
                self.groups[gkey] = self.groups.pop(gkey)
                return batch, 0.0
        return None, wait

    def _take_barrier(self, group: Group, now: float) -> list[Entry] | None:
        barrier = group.barrier
        if barrier is None or group.count or id(barrier) in self.inflight_barriers:
            return None
        if barrier.not_before > now:
            return None
        self.inflight_barriers.add(id(barrier))
        barrier.inflight = True
        return [barrier]

    def _take_single(self, group: Group) -> list[Entry] | None:
        ready = group.ready_single
        while ready:
            key = next(iter(ready))
            del ready[key]
            queue = group.people.get(key)
            if queue and key not in group.busy and queue[0].single:
                group.busy.add(key)
                queue[0].inflight = True
                self.singles_out += 1
                return [queue[0]]
        return None

    def _due(self, group: Group, now: float) -> float:
        """0 when the group's v2 entries should go now, else seconds until they should."""
        config = self._config
        if (
            self.closing
            or group.count >= config.max_batch_operations
            or group.bytes + group.count + ENVELOPE_BYTES > config.max_batch_bytes
            or group.first_seq < self.flush_upto
        ):
            return 0.0
        return max(0.0, group.first_at + config.flush_interval - now)

    def _take_v2(self, group: Group, now: float) -> list[Entry] | None:
        limit_ops, limit_bytes = self._config.max_batch_operations, self._config.max_batch_bytes
        batch: list[Entry] = []
        size = ENVELOPE_BYTES
        ready = group.ready_v2
        while ready:
            key = next(iter(ready))
            queue = group.people.get(key)
            took = 0
            full = False
            for entry in queue or ():  # consecutive v2 entries of this person, in order
                if entry.single or entry.not_before > now:
                    break
                if len(batch) >= limit_ops or size + entry.size + 1 > limit_bytes:
                    full = True
                    break
                batch.append(entry)
                size += entry.size + 1
                took += 1
            if full and not took:
                break  # still ready: the next batch starts with this person
            del ready[key]
            if took:
                group.busy.add(key)
            elif queue and key not in group.busy:
                self._refresh(group, _gkey(queue[0]), key, now)
            if full:
                break
        for entry in batch:
            entry.inflight = True
        group.first_at = now  # what is left waits for the next interval unless full or flushed
        return batch or None

    # -- outcomes ------------------------------------------------------------------------------

    def finish(self, batch: list[Entry], now: float) -> None:
        """The batch is over for good (delivered or dropped): forget it, wake who waited on it."""
        first = batch[0]
        gkey = _gkey(first)
        group = self.groups[gkey]
        self.size -= len(batch)
        if first.barrier and group.barrier is first:
            self.inflight_barriers.discard(id(first))
            group.busy.discard(first.key)  # (remove() marks it busy; a barrier is in no queue)
            group.barrier = None
            while group.held and group.barrier is None:
                self._place(group, gkey, group.held.popleft(), now)
            return
        if first.single and first.inflight:
            self.singles_out -= 1
        keys: dict[str, None] = {}
        for entry in batch:
            queue = group.people[entry.key]
            # Invariant: a batch holds the heads of its people's queues, in order.
            assert queue[0] is entry
            queue.popleft()
            group.count -= 1
            group.bytes -= entry.size
            keys[entry.key] = None
        for key in keys:
            group.busy.discard(key)
            if not group.people[key]:
                del group.people[key]
            else:
                self._refresh(group, gkey, key, now)

    def retry(self, batch: list[Entry], not_before: float, now: float) -> None:
        """Transient failure: the entries stay at the head of their people, due at ``not_before``."""
        first = batch[0]
        gkey = _gkey(first)
        group = self.groups[gkey]
        if first.single and first.inflight and not (first.barrier and group.barrier is first):
            self.singles_out -= 1
        for entry in batch:
            entry.not_before = not_before
            entry.inflight = False
        if first.barrier and group.barrier is first:
            self.inflight_barriers.discard(id(first))
            if not_before > now:
                self._tick += 1
                heapq.heappush(self._timers, (not_before, self._tick, "", gkey))
            return
        for key in dict.fromkeys(entry.key for entry in batch):
            group.busy.discard(key)
            self._refresh(group, gkey, key, now)

    def release_waits(self, health_key: str, now: float) -> None:
        """An outage ended: whatever of that endpoint was backing off is due now."""
        for gkey, group in self.groups.items():
            if group.health_key != health_key:
                continue
            if group.barrier is not None:
                group.barrier.not_before = 0.0
            for key, queue in group.people.items():
                if key not in group.busy and queue[0].not_before > now:
                    queue[0].not_before = now
                    self._refresh(group, gkey, key, now)

    # -- sweeping ------------------------------------------------------------------------------

    def expire(self, too_old: Callable[[Entry], bool], now: float) -> list[list[Entry]]:
        """Remove the entries (not in flight) that ``too_old`` condemns; returns them as
        single-entry batches already finished. Only queue heads are checked (younger follow)."""
        out: list[list[Entry]] = []
        for group in list(self.groups.values()):
            barrier = group.barrier
            if barrier is not None and id(barrier) not in self.inflight_barriers and too_old(barrier):
                out.append([barrier])
                self.finish([barrier], now)
            for key in list(group.people):
                queue = group.people.get(key)
                while queue and key not in group.busy and too_old(queue[0]):
                    entry = queue[0]
                    group.busy.add(key)
                    self.finish([entry], now)
                    out.append([entry])
                    queue = group.people.get(key)
        return out

    def leftovers(self) -> Iterator[Entry]:
        """Every entry not in flight (for shutdown); the caller finishes or drops them."""
        for group in self.groups.values():
            barrier = group.barrier
            if barrier is not None and id(barrier) not in self.inflight_barriers:
                yield barrier
            for queue in group.people.values():
                yield from (entry for entry in queue if not entry.inflight)
            yield from group.held

    def oldest(self) -> Entry | None:
        """The oldest entry not in flight that is a queue head (``overflow="drop_oldest"``)."""
        best: Entry | None = None
        for group in self.groups.values():
            for key, queue in group.people.items():
                if key not in group.busy and (best is None or queue[0].seq < best.seq):
                    best = queue[0]
        return best

    def remove(self, entry: Entry, now: float) -> None:
        """Take a queue head out (evicted): like ``finish`` for a one-entry batch."""
        group = self.groups[_gkey(entry)]
        group.busy.add(entry.key)
        self.finish([entry], now)


def _gkey(entry: Entry) -> tuple[str, str]:
    endpoint = entry.op.endpoint
    return (endpoint.base_url, endpoint.auth_header)


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
