"""One partition's consumer: read its stream through the consumer group, batch, send, acknowledge.

A :class:`PartitionConsumer` runs in its own thread while its worker holds the partition's lease
(:mod:`cioguard.scaleout.leases`). On start it takes over entries left pending by earlier owners
(``XAUTOCLAIM`` with ``min_idle`` = the lease ttl, waiting until all of them are claimable), then
re-reads its own pending entries (id ``0``), then new ones (``>``), so entries are processed in
stream order. Entries are decoded, cut into batches by the in-process lane logic
(:meth:`cioguard.delivery.lanes.Lane.take`) and sent by the shared sender one batch at a time.
An entry is acknowledged and deleted (``XACK`` + ``XDEL``) only after Customer.io accepted or
finally rejected it; an entry whose send was cut by shutdown stays pending for the next owner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters
from cioguard.delivery.lanes import Lane
from cioguard.delivery.policy import group_methods
from cioguard.delivery.sender import BatchSender
from cioguard.operations.model import Operation
from cioguard.scaleout.codec import GROUP, EntryError, decode
from cioguard.telemetry.recorder import Recorder
from cioguard.threads import daemon_thread

Entry = tuple[bytes, dict[bytes, bytes] | None]
#: A consumer idle this long with nothing pending is removed from the group (ms).
FORGET_IDLE_MS = 600_000


def ensure_group(client: redis.Redis, stream: bytes) -> None:
    """Create the consumer group (from the stream's start) unless it exists."""
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class PartitionConsumer:
    """Consumes one stream until :meth:`stop`; errors are counted and retried, never raised."""

    def __init__(
        self,
        client: redis.Redis,
        stream: bytes,
        consumer: str,
        sender: BatchSender,
        config: DeliveryConfig,
        recorder: Recorder,
        counters: Counters,
        min_idle: float,
        lease: tuple[bytes, str] | None = None,
        block: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.stream = stream
        self._consumer = consumer
        self._sender = sender
        self._config = config
        self._recorder = recorder
        self._counters = counters
        self._min_idle_ms = max(1, int(min_idle * 1000))
        self._block_ms = max(1, int(block * 1000))
        self._clock = clock
        self._lease = None if lease is None else (lease[0], lease[1].encode())
        self._stopping = threading.Event()
        self._thread = daemon_thread(self._run, f"cioguard-worker-{stream.decode()}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        ready = False
        position = b"0"
        while not self._stopping.is_set():
            try:
                if not ready:
                    ensure_group(self._client, self.stream)
                    ready = self._reclaim()
                    if not ready:
                        self._stopping.wait(0.05)
                        continue
                    position = b"0"  # our own pending entries first, then new ones
                if not self._still_owner():
                    return  # the worker restarts us if it still (or again) holds the lease
                entries = self._read(position)
                if position == b"0" and not entries:
                    position = b">"
                    continue
                if entries and not self._process(entries):
                    return  # cut by shutdown: the rest stays pending for the next owner
            except redis.RedisError as exc:
                self._counters.add("redis_errors")
                if not isinstance(exc, redis.ConnectionError):  # outages are counted, not logged
                    self._counters.error("redis", exc)
                ready = False
                self._stopping.wait(0.2)
            except Exception as exc:  # never let the consumer die
                self._counters.error("consumer", exc)
                ready = False
                self._stopping.wait(0.2)

    def _still_owner(self) -> bool:
        """Whether our worker still holds the lease. Checked before every read: after a Redis
        outage the lease may have moved before our coordinator noticed, and two consumers reading
        ``>`` on one stream would reorder a person's operations."""
        if self._lease is None:
            return True
        return bool(self._client.get(self._lease[0]) == self._lease[1])

    def _reclaim(self) -> bool:
        """Claim entries pending on earlier owners; True once none is left with anyone else."""
        start: Any = b"0-0"
        while True:
            reply = self._client.xautoclaim(
                self.stream, GROUP, self._consumer, self._min_idle_ms, start_id=start, count=200
            )
            start = reply[0]
            if start in (b"0-0", "0-0"):
                break
        consumers = self._client.xinfo_consumers(self.stream, GROUP)
        others = [c for c in consumers if _text(c["name"]) != self._consumer]
        for c in others:
            # Forget consumers of dead workers once they hold nothing (names are per process).
            if c["pending"] == 0 and int(c["idle"]) > FORGET_IDLE_MS:
                self._client.xgroup_delconsumer(self.stream, GROUP, c["name"])
        return all(c["pending"] == 0 for c in others)

    def _read(self, position: bytes) -> list[Entry]:
        block = self._block_ms if position == b">" else None
        reply: Any = self._client.xreadgroup(
            GROUP,  # type: ignore[arg-type]
            self._consumer,
            {self.stream: position},
            count=self._config.max_batch_operations,
            block=block,
        )
        if not reply:
            return []
        entries: list[Entry] = reply[0][1]
        return entries

    def _process(self, entries: list[Entry]) -> bool:
        """Send ``entries`` in order; False when a batch was cut by the shutdown deadline."""
        lane = Lane(0, threading.Lock())
        ids: dict[int, bytes] = {}
        garbage: list[bytes] = []
        for entry_id, fields in entries:
            if not fields:  # deleted while pending
                garbage.append(entry_id)
                continue
            try:
                op = decode(fields)
            except EntryError as exc:
                self._counters.error("decode", exc)
                garbage.append(entry_id)
                continue
            ids[id(op)] = entry_id
            lane.queue.append(op)
            lane.bytes += op.size
            lane.next_seq += 1
        if garbage:
            self._ack(garbage)
        while lane.queue:
            batch = lane.take(self._config)
            if not self._send(batch, [ids[id(op)] for op in batch]):
                return False
        return True

    def _send(self, batch: list[Operation], entry_ids: list[bytes]) -> bool:
        for method, count in group_methods(batch).items():
            self._recorder.enqueued(method, count)
        try:
            result = self._sender.send(batch)
        except Exception as exc:  # BatchSender never raises; belt and braces
            self._counters.error("sender", exc)
            return False
        now = self._clock()
        if result.delivered:
            self._counters.add("delivered", len(result.delivered))
            for method, count in group_methods(result.delivered).items():
                self._recorder.delivered(method, count)
            for op in result.delivered:
                self._recorder.delivery_lag(max(0.0, now - op.enqueued_at))
        cut = result.dropped.get("shutdown", [])
        for reason, ops in result.dropped.items():
            if reason != "shutdown":
                detail = self._sender.last_rejection if reason == "rejected" else ""
                self._counters.drop(reason, len(ops), detail)
                self._recorder.dropped(reason, len(ops))
        cut_ids = {id(op) for op in cut}
        done = [entry_id for op, entry_id in zip(batch, entry_ids, strict=True) if id(op) not in cut_ids]
        if done:
            self._ack(done)
        return not cut

    def _ack(self, entry_ids: list[bytes]) -> None:
        # Acknowledge and delete in one round trip: the stream holds only undelivered entries.
        # If this fails the entries stay pending and are sent again (deduplicated by event id).
        pipe = self._client.pipeline(transaction=True)
        pipe.xack(self.stream, GROUP, *entry_ids)
        pipe.xdel(self.stream, *entry_ids)
        pipe.execute()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
