"""Hand operations to Redis Streams instead of sending them from this process.

::

    from cioguard.delivery import DeliveryConfig, DeliveryEngine
    from cioguard.scaleout import RedisProducer

    producer = RedisProducer(
        "redis://10.0.0.5:6379/0",
        partitions=8,                                  # must match the workers' --partitions
        fallback=DeliveryEngine(DeliveryConfig()),     # or None: buffer, then drop when full
    )
    producer.submit(op)        # microseconds: appends to a local buffer
    producer.flush(timeout=5)  # True once everything accepted so far is in Redis (or handed to
                               # the fallback, or counted as dropped)
    producer.shutdown(timeout=5)
    producer.stats()

The interface is the :class:`~cioguard.delivery.DeliveryEngine`'s. ``submit`` appends to a
bounded in-memory buffer; one background thread pipelines the buffer to Redis (``XADD`` to
``{prefix}:stream:{crc32(shard_key) % partitions}``), so one person's operations stay in one
stream, in order. ``cioguard worker`` processes deliver them (see :mod:`cioguard.scaleout.worker`).

When Redis cannot be reached the thread marks it down and reconnects by itself every
``reconnect_interval``. Meanwhile, with a ``fallback`` (any object with ``submit/flush/shutdown/
stats``, normally a ``DeliveryEngine``) the buffer and new operations go to the fallback; without
one they wait in the buffer and, once it holds ``max_buffer`` operations, new ones are dropped
(reason ``queue_full``). Both are counted in ``stats()`` (``fallback``, ``not_handed_over``).
Order across a fallback switch is not guaranteed.

Durability: with ``spool_path`` (a :mod:`cioguard.delivery.spool` file, group commit) every
buffered operation is also in the spool until Redis acknowledged it; what a crash, or a shutdown
during an outage, leaves behind is handed over by the next producer opening that file. Without
it a crash loses the buffer (at most ``max_buffer``, normally a few ms of operations). Delivery
through Redis is at least once: an ``XADD`` pipeline cut by a failure is sent again (event ids
make that harmless at Customer.io).

The stream entries hold the ``Authorization`` header: protect Redis like the spool file.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from cioguard import forks
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.policy import group_methods
from cioguard.delivery.spool import Spool
from cioguard.operations.model import Operation
from cioguard.scaleout.codec import Keys, encode, partition_of
from cioguard.scaleout.connection import Fallback, connect
from cioguard.scaleout.persistence import safe_redis_url, warn_if_not_durable
from cioguard.telemetry.recorder import NullRecorder, Recorder
from cioguard.threads import daemon_thread


class RedisProducer:
    """See the module docstring. Thread-safe; fork-safe (the child starts empty)."""

    def __init__(
        self,
        queue_url: str,
        *,
        partitions: int = 8,
        max_buffer: int = 10_000,
        recorder: Recorder | None = None,
        fallback: Fallback | None = None,
        prefix: str = "cioguard",
        max_pipeline: int = 500,
        reconnect_interval: float = 1.0,
        exit_timeout: float = 5.0,
        spool_path: str | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"partitions must be an int >= 1, got {partitions!r}")
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError(f"max_buffer must be an int >= 1, got {max_buffer!r}")
        self._url = queue_url
        self._partitions = partitions
        self._max_buffer = max_buffer
        self._recorder: Recorder = recorder or NullRecorder()
        self._fallback = fallback
        self._streams = [Keys(prefix).stream(i) for i in range(partitions)]
        self._max_pipeline = max(1, max_pipeline)
        self._reconnect_interval = reconnect_interval
        self._exit_timeout = exit_timeout
        self._clock = clock
        self._spool = None if spool_path is None else Spool(spool_path, "group", spool_max_bytes)
        self._reset()
        if self._spool is not None:
            self._recover(self._spool)
        ref = weakref.ref(self)
        forks.in_child(lambda: _call(ref, "_after_fork"))
        atexit.register(_call, ref, "_at_exit")

    def _after_fork(self) -> None:
        if self._spool is not None:
            self._spool.after_fork()
        self._reset()

    def _recover(self, spool: Spool) -> None:
        """Queue what earlier (crashed or stopped) processes left in the spool, before anything new."""
        ops, self._spilled = spool.recover(self._max_buffer)
        if ops or self._spilled:
            logger.info("cioguard: handing over %d operation(s) left in the spool", len(ops) + self._spilled)
        self._push(ops)

    def _push(self, ops: list[Operation]) -> None:
        """Queue already accepted operations (from the spool) regardless of ``max_buffer``."""
        if not ops:
            return
        with self._lock:
            self._buffer.extend(ops)
            self._submitted += len(ops)
            if self._thread is None:
                self._start()
        self._wake.set()

    def _reset(self) -> None:
        """Fresh state (construction, and the child after fork: it never resends the parent's)."""
        self._pid = os.getpid()
        self._client = connect(self._url)
        self._buffer: deque[Operation] = deque()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = False
        self._up = True
        self._inflight = 0  # popped from the buffer into the pipeline being sent
        self._submitted = 0  # operations put in the buffer
        self._resolved = 0  # of those: handed over, passed to the fallback, or dropped
        self._spilled = 0  # recovered rows still on disk (reloaded once the buffer drains)
        self._counters = Counters(self._clock)
        for name in ("handed_over", "fallback", "not_handed_over", "redis_errors", "reconnects"):
            self._counters.values[name] = 0

    # -- caller side ---------------------------------------------------------------------------

    def submit(self, op: Operation) -> bool:
        """Accept ``op``; False when it was dropped (counted). Never raises, never blocks."""
        if self._pid != os.getpid():
            self._after_fork()
        if self._closed:
            return self._drop_now(op, "shutdown")
        if not self._up and self._fallback is not None:
            return self._to_fallback(op)
        with self._lock:
            if len(self._buffer) + self._inflight >= self._max_buffer:
                full = True
            else:
                full = False
                if self._spool is not None:
                    # Invariant: the row is queued for the spool before the thread can ack it.
                    self._spool.add(op)
                self._buffer.append(op)
                self._submitted += 1
                self._counters.values["accepted"] += 1  # written under the lock only
                if self._thread is None:
                    self._start()
        if full:
            if self._fallback is not None:
                return self._to_fallback(op)
            self._counters.add("not_handed_over")
            return self._drop_now(op, "queue_full")
        if not self._wake.is_set():
            self._wake.set()
        return True

    def _to_fallback(self, op: Operation) -> bool:
        assert self._fallback is not None
        self._counters.add("fallback")
        try:
            return self._fallback.submit(op)
        except Exception as exc:  # a fallback must not break the caller
            self._counters.error("fallback submit", exc)
            return False

    def _drop_now(self, op: Operation, reason: str) -> bool:
        self._recorder.call(op.method, "background", op.caller_seconds)
        self._counters.drop(reason, 1)
        self._recorder.dropped(reason, 1)
        return False

    def _start(self) -> None:
        self._recorder.queue_capacity(self._max_buffer)
        self._thread = daemon_thread(self._run, "cioguard-redis-producer")
        self._thread.start()

    # -- background thread ---------------------------------------------------------------------

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

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """True once everything accepted so far was written to Redis, handed to the fallback (and
        flushed there) or counted as dropped; False on timeout. Delivery is the workers' job."""
        if self._pid != os.getpid():
            self._reset()
            return True
        end = time.monotonic() + max(0.0, timeout)
        self._wake.set()
        with self._lock:
            target = self._submitted
            while self._resolved < target:
                left = end - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._progress.wait(min(left, 0.1))
        if self._fallback is not None and self._counters.values["fallback"]:
            return self._fallback.flush(max(0.0, end - time.monotonic()))
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout`` and stop; idempotent. Later submits are dropped (shutdown)."""
        if self._closed:
            return
        end = time.monotonic() + max(0.0, timeout)
        self._closed = True
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, end - time.monotonic()))
        with self._lock:
            leftovers = list(self._buffer)
            self._buffer.clear()
        self._keep_or_drop(leftovers)
        if self._spool is not None:
            self._spool.close(max(0.0, end - time.monotonic()))
            self._count_spool_losses(self._spool)
        if self._fallback is not None:
            self._fallback.shutdown(max(0.0, end - time.monotonic()))
        self._client.close()

    def _count_spool_losses(self, spool: Spool) -> None:
        """What the spool itself lost (a full disk, expired rows) is a drop like any other."""
        for reason, count in spool.take_losses().items():
            if count:
                self._counters.drop(reason, count, "lost by the spool")
                self._recorder.dropped(reason, count)

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

    def _at_exit(self) -> None:
        if self._pid == os.getpid():
            self.shutdown(self._exit_timeout)

    def queued(self) -> int:
        """Operations buffered, not yet handed to Redis."""
        return len(self._buffer)

    def stats(self) -> dict[str, Any]:
        """``accepted``, ``handed_over``, ``fallback``, ``not_handed_over``, ``dropped`` by reason,
        ``queue_size`` (buffered), ``redis_up``, ``redis_errors``, ``reconnects``; with a fallback
        its own stats under ``fallback_stats``."""
        if self._spool is not None:
            self._count_spool_losses(self._spool)
        out = self._counters.snapshot()
        with self._lock:
            out["queue_size"] = len(self._buffer)
        out["queue_capacity"] = self._max_buffer
        out["redis_up"] = self._up
        out["running"] = self._thread is not None and self._thread.is_alive()
        if self._fallback is not None:
            out["fallback_stats"] = self._fallback.stats()
        return out


def _call(ref: weakref.ReferenceType[RedisProducer], name: str) -> None:
    producer = ref()
    if producer is not None:
        try:
            getattr(producer, name)()
        except Exception as exc:  # hooks run inside fork()/exit: never raise
            logger.error("cioguard redis producer: %s failed: %r", name, exc)
