"""What the scheduler keeps per accepted operation (:class:`Entry`) and per endpoint (:class:`Group`).

Sender side only: the caller never builds either. Guarded by the engine's lock.
"""

from __future__ import annotations

from collections import deque

from cioguard.operations.model import Operation


class Entry:
    """One accepted operation inside the engine (sender side only; the caller never builds one)."""

    __slots__ = (
        "attempts",
        "barrier",
        "born",
        "inflight",
        "key",
        "not_before",
        "op",
        "seq",
        "single",
        "size",
        "spill",
    )

    def __init__(self, op: Operation, seq: int, born: float, spill: int | None = None) -> None:
        self.op = op
        self.seq = seq
        self.born = born
        self.size = op.size
        self.single = op.route != "v2"
        self.barrier = op.method == "merge_customers"
        key = op.shard_key
        self.key = key if key else f"\0{seq}"  # no identity: no order to keep
        self.attempts = 0
        self.not_before = 0.0
        self.inflight = False
        #: Ordinal among spilled operations (flush accounting), or None.
        self.spill = spill


class Group:
    """The queued work of one endpoint."""

    __slots__ = (
        "barrier",
        "busy",
        "bytes",
        "count",
        "first_at",
        "first_seq",
        "health_key",
        "held",
        "people",
        "ready_single",
        "ready_v2",
    )

    def __init__(self, health_key: str) -> None:
        self.health_key = health_key
        self.people: dict[str, deque[Entry]] = {}
        self.ready_single: dict[str, None] = {}  # insertion-ordered sets of person keys
        self.ready_v2: dict[str, None] = {}
        self.busy: set[str] = set()
        self.count = 0  # entries in ``people`` (in flight included)
        self.bytes = 0
        self.first_at = 0.0
        self.first_seq = 0
        #: The pending merge barrier (not in ``people``) and what arrived after it.
        self.barrier: Entry | None = None
        self.held: deque[Entry] = deque()
