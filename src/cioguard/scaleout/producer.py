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

from cioguard import forks
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.spool import Spool
from cioguard.operations.model import Operation
from cioguard.scaleout.codec import Keys
from cioguard.scaleout.connection import Fallback, connect
from cioguard.scaleout.handover import HandOver
from cioguard.telemetry.recorder import NullRecorder, Recorder
from cioguard.threads import daemon_thread


class RedisProducer(HandOver):
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

    def _drop_now(self, op: Operation, reason: str) -> bool:
        self._recorder.call(op.method, "background", op.caller_seconds)
        self._counters.drop(reason, 1)
        self._recorder.dropped(reason, 1)
        return False

    def _start(self) -> None:
        self._recorder.queue_capacity(self._max_buffer)
        self._thread = daemon_thread(self._run, "cioguard-redis-producer")
        self._thread.start()

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
