"""The producer's background thread: pipelines the buffer to Redis Streams (a mixin of
:class:`~cioguard.scaleout.producer.RedisProducer`).

One daemon thread per process takes up to ``max_pipeline`` operations from the buffer at a time
and ``XADD``s them to their partition's stream in one pipeline. When Redis fails it puts the
batch back at the buffer's front (so one person's operations keep their order), marks Redis down
and, with a ``fallback``, hands the buffer to it; it pings Redis every ``reconnect_interval``
until it answers. Every operation popped from the buffer is *resolved* once: handed over, passed
to the fallback, kept in the spool or counted as dropped (``flush()`` waits on that count).
"""

from __future__ import annotations

import threading
from collections import deque

import redis

from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.policy import group_methods
from cioguard.delivery.spool import Spool
from cioguard.operations.model import Operation
from cioguard.scaleout.codec import encode, partition_of
from cioguard.scaleout.connection import Fallback
from cioguard.scaleout.persistence import safe_redis_url, warn_if_not_durable
from cioguard.telemetry.recorder import Recorder


class HandOver:
    """The thread's side of the producer; the producer owns the state declared here."""

    _url: str
    _partitions: int
    _max_buffer: int
    _recorder: Recorder
    _fallback: Fallback | None
    _streams: list[bytes]
    _max_pipeline: int
    _reconnect_interval: float
    _spool: Spool | None
    _client: redis.Redis
    _buffer: deque[Operation]
    _lock: threading.Lock
    _progress: threading.Condition
    _wake: threading.Event
    _stop: bool
    _up: bool
    _inflight: int
    _resolved: int
    _spilled: int
    _counters: Counters

    def _push(self, ops: list[Operation]) -> None:
        raise NotImplementedError

    def _to_fallback(self, op: Operation) -> bool:
        assert self._fallback is not None
        self._counters.add("fallback")
        try:
            return self._fallback.submit(op)
        except Exception as exc:  # a fallback must not break the caller
            self._counters.error("fallback submit", exc)
            return False

    def _run(self) -> None:
        # Once per process and URL: a Redis without AOF loses queued operations when it crashes.
        warn_if_not_durable(self._client, safe_redis_url(self._url))
        while True:
            self._wake.wait(self._reconnect_interval if not self._up else None)
            self._wake.clear()
            try:
                if self._stop and not self._buffer:
                    return
                if not self._up and not self._reconnect():
                    self._spill_to_fallback()
                    if self._stop:
                        return
                    continue
                while self._buffer and self._up:
                    self._send_some()
                if self._spilled and not self._buffer and self._up and self._spool is not None:
                    ops = self._spool.reload(self._max_buffer)
                    self._spilled = max(0, self._spilled - len(ops)) if ops else 0
                    self._push(ops)
            except Exception as exc:  # never let the thread die
                self._counters.error("redis producer", exc)
            if self._stop and (not self._buffer or not self._up):
                return

    def _send_some(self) -> None:
        with self._lock:
            count = min(len(self._buffer), self._max_pipeline)
            batch = [self._buffer.popleft() for _ in range(count)]
            self._inflight = count  # still counts against max_buffer
        pipe = self._client.pipeline(transaction=False)
        for op in batch:
            pipe.xadd(self._streams[partition_of(op.shard_key, self._partitions)], encode(op))  # type: ignore[arg-type]
        try:
            pipe.execute()
        except redis.RedisError as exc:
            # Invariant: a failed pipeline goes back to the buffer's front in order, so one
            # person's operations are never reordered; entries it did add are sent twice.
            with self._lock:
                self._buffer.extendleft(reversed(batch))
                self._inflight = 0
            self._mark_down(exc)
            self._spill_to_fallback()
            return
        self._counters.add("handed_over", len(batch))
        if self._spool is not None:
            self._spool.ack(batch)
        for op in batch:
            self._recorder.call(op.method, "background", op.caller_seconds)
        for method, n in group_methods(batch).items():
            self._recorder.enqueued(method, n)
        self._resolve(len(batch))

    def _resolve(self, count: int) -> None:
        with self._lock:
            self._inflight = 0
            self._resolved += count
            self._progress.notify_all()
            size = len(self._buffer)
        self._recorder.queue_size(size)

    def _mark_down(self, exc: BaseException) -> None:
        if self._up:
            logger.warning("cioguard: Redis queue unreachable (%s); reconnecting", type(exc).__name__)
        self._up = False
        self._counters.add("redis_errors")

    def _reconnect(self) -> bool:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._mark_down(exc)
            return False
        logger.warning("cioguard: Redis queue reachable again")
        self._up = True
        self._counters.add("reconnects")
        return True

    def _spill_to_fallback(self) -> None:
        """While Redis is down: hand the buffer to the fallback (if any); at shutdown, drop it."""
        if self._fallback is None and not self._stop:
            return
        with self._lock:
            batch = list(self._buffer)
            self._buffer.clear()
        if not batch:
            return
        if self._fallback is None:
            self._keep_or_drop(batch)
        else:
            for op in batch:
                self._to_fallback(op)
            if self._spool is not None:
                self._spool.ack(batch)  # the fallback owns them now
        self._resolve(len(batch))

    def _keep_or_drop(self, ops: list[Operation]) -> None:
        """Operations this process can no longer hand over: kept in the spool for the next
        process when there is one, else counted as dropped (``shutdown``)."""
        if not ops:
            return
        self._counters.add("not_handed_over", len(ops))
        if self._spool is not None:
            logger.warning("cioguard: %d operation(s) kept in the spool for the next process", len(ops))
            return
        self._counters.drop("shutdown", len(ops), "Redis unreachable at shutdown")
        self._recorder.dropped("shutdown", len(ops))
