"""What the engine asks of the whole queue now and then: expired heads, leftovers, the oldest.

::

    gone = expire(sched, too_old, now)   # heads past their patience, removed (single-op batches)
    ops = list(leftovers(sched))         # everything not in flight (shutdown)
    flying = list(in_flight(sched))      # everything in flight (shutdown, past its deadline)
    victim = oldest(sched)               # the oldest head not in flight (overflow="drop_oldest")

Not thread-safe: called under the engine's lock, like :class:`~cioguard.delivery.scheduler.Scheduler`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

from cioguard.delivery.scheduler import Scheduler
from cioguard.operations.model import Operation


def expire(sched: Scheduler, too_old: Callable[[Operation], bool], now: float) -> list[list[Operation]]:
    """Remove the operations (not in flight) that ``too_old`` condemns; returns them as
    single-operation batches already finished. Only queue heads are checked (younger follow)."""
    out: list[list[Operation]] = []
    for group in list(sched.groups.values()):
        barrier = group.barrier
        if barrier is not None and id(barrier) not in sched.inflight_barriers and too_old(barrier):
            out.append([barrier])
            sched.finish([barrier], now, inflight=False)
        for key in list(group.people):
            queue = group.people.get(key)
            while queue and key not in group.busy and too_old(queue[0]):
                op = queue[0]
                sched.finish([op], now, inflight=False)
                out.append([op])
                queue = group.people.get(key)
    return out


def leftovers(sched: Scheduler) -> Iterator[Operation]:
    """Every operation not in flight (for shutdown); the caller finishes or drops them."""
    for group in sched.groups.values():
        barrier = group.barrier
        if barrier is not None and id(barrier) not in sched.inflight_barriers:
            yield barrier
        for key, queue in group.people.items():
            yield from islice(queue, group.busy.get(key, 0), None)
        yield from group.held


def in_flight(sched: Scheduler) -> Iterator[Operation]:
    """Every operation in flight: the busy heads of each person's FIFO and the barriers sent."""
    for group in sched.groups.values():
        barrier = group.barrier
        if barrier is not None and id(barrier) in sched.inflight_barriers:
            yield barrier
        for key, count in group.busy.items():
            yield from islice(group.people.get(key, ()), count)


def oldest(sched: Scheduler) -> Operation | None:
    """The oldest operation not in flight that is a queue head (``overflow="drop_oldest"``)."""
    best: Operation | None = None
    for group in sched.groups.values():
        for key, queue in group.people.items():
            if key not in group.busy and (best is None or queue[0].created_at < best.created_at):
                best = queue[0]
    return best
