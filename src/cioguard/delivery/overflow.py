"""What ``submit`` does when the memory queue is full or rows wait on disk (the slow path).

::

    with core.lock:
        accepted = admit(core, op)   # spill to the spool, apply ``overflow``, or refuse (counted)
    core.out.run_hooks()             # then tell on_drop, outside the lock

With a spool, a full queue spills to disk, and while anything is spilled new operations spill
too (so nobody's operations overtake theirs on disk). Without room, ``overflow`` decides:
``drop_newest`` refuses the newcomer, ``drop_oldest`` drops the oldest waiting operation, ``block``
waits up to ``block_timeout`` for room. Every drop is counted before any flush marker can settle.
"""

from __future__ import annotations

import time

from cioguard.delivery.outcomes import Mark
from cioguard.delivery.state import CoreState
from cioguard.delivery.sweeps import oldest
from cioguard.operations.deferred import materialize
from cioguard.operations.model import Operation


def admit(core: CoreState, op: Operation) -> bool:
    """Spill, make room or refuse ``op`` (lock held); True when it was accepted."""
    if core.closed:
        return refuse(core, op, "shutdown", defer=True)
    full = len(core.inbox) + core.sched.size >= core.capacity
    if full:
        core.fill.observe(core.capacity, core.clock())  # (CIO011: the queue was full)
    if core.link.on and (core.spilled or full):
        # Rows are read back in insertion order: the inbox's rows must be written first.
        core.intake(core.clock())
        if core.link.spill(op):
            # Invariant: while anything is spilled new operations spill too, so a person's
            # operations never overtake the ones waiting on disk.
            core.spilled += 1
            core.spill_in += 1
            core.counters.add("accepted")
            return True
    if full and not make_room(core):
        return refuse(core, op, "spool_error" if core.link.failing() else "queue_full", defer=True)
    if core.keep_on_caller:
        core.link.keep(op)  # committed ("always") or queued for the group commit before we return
    core.inbox.append(op)
    return True


def make_room(core: CoreState) -> bool:
    """Apply the overflow policy (lock held); True when there is room now."""
    config = core.config
    if config.overflow == "drop_oldest":
        victim: Operation | None = None
        queued = False
        if core.inbox and type(core.inbox[0]) is not Mark:
            victim = core.inbox.popleft()  # safe: senders pop only under this lock
            if type(victim) is tuple:  # a caller's Snapshot, not taken in yet
                victim = materialize(victim)
        else:
            victim = oldest(core.sched)
            if victim is not None:
                core.sched.remove(victim, core.clock())
                queued = True
        if victim is None:
            return False
        core.recorder.call(victim.method, "background", victim.caller_seconds)
        core.out.drop([victim], "queue_full", defer=True)  # counted before a flush can end
        core.link.done([victim])
        if queued:
            core.settle([victim])
        return True
    if config.overflow == "block":
        end = time.monotonic() + config.block_timeout
        core.space_waiters += 1
        try:
            while len(core.inbox) + core.sched.size >= core.capacity and not core.closed:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                core.wake()
                core.space.wait(left)
        finally:
            core.space_waiters -= 1
        return not core.closed
    return False


def refuse(core: CoreState, op: Operation, reason: str, defer: bool = False) -> bool:
    """Count ``op`` as dropped for ``reason``; always False."""
    core.recorder.call(op.method, "background", op.caller_seconds)
    core.counters.add("accepted")  # a call refused at the door: accepted, then dropped
    core.out.drop([op], reason, defer=defer)
    return False
