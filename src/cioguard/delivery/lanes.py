"""A lane: one FIFO of operations and the sender thread that drains it in order.

Used by the Redis scale-out consumer (:mod:`cioguard.scaleout.consumer`); the in-process engine
schedules per person instead (:mod:`cioguard.delivery.scheduler`).

Operations are spread over lanes by ``hash(shard_key) % lanes``; a lane sends one request at a
time and finishes (retries included) each batch before taking the next, so operations with the
same shard key are never reordered while the lanes together keep several requests in flight.

All fields are guarded by the engine's single lock (``cond`` is a Condition on that lock).
Sequence numbers are implicit: the queue always holds the contiguous sequence numbers
``[next_seq - len(queue), next_seq)``, which is what makes ``flush`` exact.
"""

from __future__ import annotations

import threading
from collections import deque

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.operations.model import Operation


class Lane:
    __slots__ = (
        "bytes",
        "cond",
        "first_at",
        "flush_upto",
        "idle",
        "index",
        "inflight_from",
        "next_seq",
        "queue",
    )

    def __init__(self, index: int, lock: threading.Lock) -> None:
        self.index = index
        self.queue: deque[Operation] = deque()
        self.cond = threading.Condition(lock)
        #: Bytes of the queued bodies (not in flight).
        self.bytes = 0
        #: Operations ever appended to this lane.
        self.next_seq = 0
        #: Sequence number of the first operation of the batch in flight, or None.
        self.inflight_from: int | None = None
        #: When the queue last went from empty to non-empty (a lower bound of the head's age).
        self.first_at = 0.0
        #: Send partial batches now while the head's sequence number is below this.
        self.flush_upto = 0
        #: The sender thread is waiting on ``cond``.
        self.idle = False

    @property
    def low(self) -> int:
        """The lowest sequence number not yet finished."""
        if self.inflight_from is not None:
            return self.inflight_from
        return self.next_seq - len(self.queue)

    def ready(self, config: DeliveryConfig, now: float, stopping: bool) -> float:
        """0.0 when a batch should be sent now, else the seconds to wait (queue non-empty)."""
        queue = self.queue
        if (
            stopping
            or len(queue) >= config.max_batch_operations
            or self.bytes + len(queue) + ENVELOPE_BYTES > config.max_batch_bytes
            or self.next_seq - len(queue) < self.flush_upto
        ):
            return 0.0
        return max(0.0, self.first_at + config.flush_interval - now)

    def take(self, config: DeliveryConfig) -> list[Operation]:
        """Pop the next batch: a lone ``single`` op, or the longest prefix of ``v2`` ops of one
        endpoint that fits ``max_batch_operations`` and ``max_batch_bytes``."""
        queue = self.queue
        self.inflight_from = self.next_seq - len(queue)
        first = queue.popleft()
        batch = [first]
        size = ENVELOPE_BYTES + first.size
        if first.route == "v2":
            endpoint = first.endpoint
            limit_ops, limit_bytes = config.max_batch_operations, config.max_batch_bytes
            while queue and len(batch) < limit_ops:
                nxt = queue[0]
                if nxt.route != "v2" or (nxt.endpoint is not endpoint and nxt.endpoint != endpoint):
                    break
                if size + 1 + nxt.size > limit_bytes:
                    break
                size += 1 + nxt.size
                batch.append(queue.popleft())
        self.bytes -= sum(op.size for op in batch)
        return batch
