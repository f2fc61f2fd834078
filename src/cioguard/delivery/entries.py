"""What the scheduler keeps per endpoint (:class:`Group`), and how it reads a queued operation.

Sender side only, guarded by the engine's lock. The scheduler keeps no object per queued
operation: the per-person FIFOs hold the :class:`~cioguard.operations.model.Operation` itself
(its ``_enqueued_at`` holds the acceptance time on the engine's clock, one float shared by a
whole intake), and what only some operations need lives in small per-person or per-batch maps:
``wait`` (a person's retry time), ``busy`` (how many of a person's head operations are in
flight) and :attr:`cioguard.delivery.scheduler.Scheduler.tries` (failed attempts).
"""

from __future__ import annotations

from collections import deque
from operator import attrgetter

from cioguard.operations.model import Operation

#: A person's FIFO key: the shard key, or the operation itself when it has none (no order to keep).
PersonKey = str | Operation

_body = attrgetter("_body")


def person(op: Operation) -> PersonKey:
    """The FIFO an operation waits in (it is complete: the sender completes it at intake)."""
    return op._shard_key or op


def born(op: Operation) -> float:
    """When the engine accepted ``op``, on its clock (set at intake; see ``Operation.enqueued_at``)."""
    return op._enqueued_at or 0.0


def is_single(op: Operation) -> bool:
    """Sent on its own (a v1 path, an App API send, an entry over 32 KB), not in a v2 batch."""
    return op._request[0] != "v2"


def is_barrier(op: Operation) -> bool:
    """A ``merge_customers``: sent after everything of its endpoint accepted before it."""
    return op.method == "merge_customers"


def total_size(ops: list[Operation]) -> int:
    """Bytes of the encoded bodies of ``ops`` (C-level)."""
    return sum(map(len, map(_body, ops)))


class Group:
    """The queued work of one endpoint."""

    __slots__ = (
        "barrier",
        "barrier_wait",
        "busy",
        "bytes",
        "count",
        "first_at",
        "first_epoch",
        "health_key",
        "held",
        "key",
        "people",
        "ready_single",
        "ready_v2",
        "singles",
        "wait",
    )

    def __init__(self, key: tuple[str, str]) -> None:
        #: ``(base_url, auth_header)``: the scheduler's key, and the key of its rate limiter.
        self.key = key
        self.health_key = key[0]  # outages are per base URL, whatever the credentials
        self.people: dict[PersonKey, deque[Operation]] = {}
        self.ready_single: dict[PersonKey, None] = {}  # insertion-ordered sets of person keys
        self.ready_v2: dict[PersonKey, None] = {}
        #: person → how many of the head operations of its FIFO are in flight.
        self.busy: dict[PersonKey, int] = {}
        #: person → when its head may be tried again (after a transient failure); absent: now.
        self.wait: dict[PersonKey, float] = {}
        self.count = 0  # operations in ``people`` (in flight included)
        self.singles = 0  # of which v1-only (0: every FIFO may go into a batch whole)
        self.bytes = 0
        self.first_at = 0.0
        #: The scheduler's flush epoch when ``count`` last rose from 0 (flush markers).
        self.first_epoch = 0
        #: The pending merge barrier (not in ``people``), when it may be tried again, and what
        #: arrived after it.
        self.barrier: Operation | None = None
        self.barrier_wait = 0.0
        self.held: deque[Operation] = deque()
