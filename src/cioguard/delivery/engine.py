"""The background delivery engine: accept operations cheaply, deliver them from lane threads.

::

    from cioguard.delivery import DeliveryConfig, DeliveryEngine

    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.5))
    engine.submit(op)          # never blocks (unless overflow="block"); False = dropped, counted
    engine.flush(timeout=5)    # send partial batches now; True once all accepted so far finished
    engine.shutdown(timeout=5) # idempotent; later submits are dropped with reason "shutdown"
    engine.stats()             # queue size, accepted, delivered, dropped by reason, retries ...

Threads start on the first ``submit``; they are daemons, and an ``atexit`` hook flushes within
``exit_timeout`` so a dead endpoint can never hang interpreter exit. After ``fork`` the child
gets a fresh queue, locks, threads and HTTP session and never resends the parent's operations
(``os.register_at_fork`` through a weakref, plus a pid check on submit for uWSGI).
The caller thread records nothing on the success path; the lane records ``call``/``enqueued``
when it takes an operation off the queue.
"""

from __future__ import annotations

import atexit
import os
import random as _random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from cioguard.delivery.config import ENVELOPE_BYTES, DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.lanes import Lane
from cioguard.delivery.policy import group_methods
from cioguard.delivery.sender import BatchResult, BatchSender, ResponseHook
from cioguard.delivery.spool import Spool
from cioguard.delivery.transport import RequestsTransport, Transport
from cioguard.operations.model import Operation
from cioguard.telemetry.recorder import NullRecorder, Recorder


class DeliveryEngine:
    """Queues operations per lane and delivers them in the background. Thread-safe."""

    def __init__(
        self,
        config: DeliveryConfig | None = None,
        recorder: Recorder | None = None,
        tracer: Any = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        random: _random.Random | None = None,
        on_response: ResponseHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config or DeliveryConfig()
        self._recorder: Recorder = recorder or NullRecorder()
        self._tracer = tracer
        self._own_transport = transport is None
        self._transport: Transport = transport or RequestsTransport(self._config.lanes)
        self._clock = clock
        self._rng = random or _random.Random()
        self._on_response = on_response
        self._sleep = sleep
        self._spool: Spool | None = None
        if self._config.spool_path is not None:
            self._spool = Spool(
                self._config.spool_path, self._config.spool_sync, self._config.spool_max_bytes
            )
        self._reset_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call(ref, "_after_fork"))
        atexit.register(_call, ref, "_at_exit")
        if self._spool is not None:
            recovered, rest = self._spool.recover(self._config.max_queue_size)
            if recovered or rest:
                logger.info("cioguard: delivering %d operation(s) left in the spool", len(recovered) + rest)
                with self._lock:
                    self._spilled = rest
                for op in recovered:
                    self._push(op)

    # -- state ---------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        """Fresh locks, lanes and counters (construction and the child after fork)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._space_waiters = 0
        self._lanes = [Lane(i, self._lock) for i in range(self._config.lanes)]
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._inflight = 0
        self._closed = False
        self._deadline: float | None = None
        self._spilled = 0
        self._kept_in_spool = 0
        self._reloading = False
        self._reloads = 0
        self._counters = Counters(self._clock)
        self._sender = BatchSender(
            self._config,
            self._transport,
            self._recorder,
            self._counters,
            self._clock,
            self._sleep,
            self._rng,
            lambda: self._deadline,
            self._tracer,
            self._on_response,
        )

    def _after_fork(self) -> None:
        # Locks are replaced, never acquired: a parent thread may have held them at fork time.
        self._reset_state()
        reset = getattr(self._transport, "reset_after_fork", None)
        if callable(reset):
            reset()
        if self._spool is not None:
            self._spool.after_fork()

    def _start(self) -> None:
        """Start the lane threads (under the lock, once)."""
        self._recorder.queue_capacity(self._config.max_queue_size)
        for lane in self._lanes:
            thread = threading.Thread(
                target=self._run, args=(lane,), name=f"cioguard-delivery-{lane.index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    # -- caller side ---------------------------------------------------------------------------

    def submit(self, op: Operation) -> bool:
        """Accept ``op`` for delivery. Returns False when it was dropped (already counted)."""
        if self._pid != os.getpid():
            self._after_fork()
        if self._closed:
            return self._reject(op, "shutdown")
        if op.route == "v2" and op.size + ENVELOPE_BYTES > self._config.max_batch_bytes:
            return self._reject(op, "oversize")
        reason = self._enqueue(op)
        return True if reason is None else self._reject(op, reason)

    def _enqueue(self, op: Operation) -> str | None:
        """Queue ``op`` in memory or spill it to the spool; else return the drop reason."""
        config = self._config
        lane = self._lanes[hash(op.shard_key) % len(self._lanes)]
        spool = self._spool
        with self._lock:
            if self._closed:  # shutdown raced with this submit
                return "shutdown"
            if not self._threads:
                self._start()
            # Invariant: while anything is spilled, new operations spill too, so a person's
            # operations never overtake the ones waiting on disk.
            full = self._pending >= config.max_queue_size
            if spool is not None and (self._spilled or full) and spool.add(op, in_memory=False):
                self._spilled += 1
                self._counters.values["accepted"] += 1
                return None
            if full and not self._make_room(lane):
                return "queue_full"
            if spool is not None and not spool.add(op):
                logger.debug("cioguard: spool full (spool_max_bytes); operation kept in memory only")
            queue = lane.queue
            if not queue:
                lane.first_at = self._clock()
            queue.append(op)
            lane.next_seq += 1
            lane.bytes += op.size
            self._pending += 1
            self._counters.values["accepted"] += 1  # only ever written under the engine lock
            if lane.idle and (
                len(queue) == 1
                or len(queue) >= config.max_batch_operations
                or lane.bytes + len(queue) + ENVELOPE_BYTES > config.max_batch_bytes
            ):
                lane.idle = False
                lane.cond.notify()
        return None

    def _make_room(self, lane: Lane) -> bool:
        """Apply the overflow policy with the lock held; True when there is room now."""
        policy = self._config.overflow
        if policy == "drop_oldest":
            victim_lane = lane if lane.queue else max(self._lanes, key=lambda x: len(x.queue))
            if not victim_lane.queue:
                return False
            victim = victim_lane.queue.popleft()
            victim_lane.bytes -= victim.size
            self._pending -= 1
            self._lock.release()
            try:
                self._recorder.call(victim.method, "background", victim.caller_seconds)
                self._drop([victim], "queue_full")
            finally:
                self._lock.acquire()
            return self._pending < self._config.max_queue_size
        if policy == "block":
            end = time.monotonic() + self._config.block_timeout
            self._space_waiters += 1
            try:
                while self._pending >= self._config.max_queue_size and not self._closed:
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    self._space.wait(left)
            finally:
                self._space_waiters -= 1
            return not self._closed
        return False

    def record_drop(self, reason: str, count: int = 1, detail: str = "") -> None:
        """Count operations lost before they reached the engine (an oversize call refused by the
        caller's side): in ``stats()``, the metric and the once-a-minute log like any other drop."""
        self._drop_count(reason, count, detail)

    def _drop_count(self, reason: str, count: int, detail: str = "") -> None:
        self._counters.drop(reason, count, detail)
        self._recorder.dropped(reason, count)

    def _reject(self, op: Operation, reason: str) -> bool:
        self._recorder.call(op.method, "background", op.caller_seconds)
        self._drop([op], reason)
        return False

    def _drop(self, ops: list[Operation], reason: str, detail: str = "") -> None:
        self._counters.drop(reason, len(ops), detail)
        self._recorder.dropped(reason, len(ops))

    # -- lane threads --------------------------------------------------------------------------

    def _run(self, lane: Lane) -> None:
        while True:
            try:
                batch = self._next_batch(lane)
                if batch is None:
                    return
                self._process(lane, batch)
            except Exception as exc:  # never let a lane die
                self._counters.error("lane", exc)

    def _next_batch(self, lane: Lane) -> list[Operation] | None:
        with self._lock:
            while True:
                if lane.queue:
                    wait = lane.ready(self._config, self._clock(), self._closed)
                    if wait <= 0:
                        batch = lane.take(self._config)
                        self._inflight += len(batch)
                        return batch
                else:
                    if self._closed:
                        return None
                    wait = None
                lane.idle = True
                lane.cond.wait(wait)
                lane.idle = False

    def _process(self, lane: Lane, batch: list[Operation]) -> None:
        recorder = self._recorder
        result = BatchResult()
        try:
            durations: dict[str, list[float]] = {}
            for op in batch:
                durations.setdefault(op.method, []).append(op.caller_seconds)
            for method, seconds in durations.items():
                recorder.calls(method, "background", seconds)
                recorder.enqueued(method, len(seconds))
            result = self._sender.send(batch)
        except Exception as exc:
            self._counters.error("sender", exc)
            result.dropped = {"expired": batch}
        finally:
            self._finish(lane, batch, result)

    def _finish(self, lane: Lane, batch: list[Operation], result: BatchResult) -> None:
        delivered = result.delivered
        if delivered:
            now = self._clock()
            self._counters.add("delivered", len(delivered))
            for method, count in group_methods(delivered).items():
                self._recorder.delivered(method, count)
            lags = [max(0.0, now - op.enqueued_at) for op in delivered if op.enqueued_at]
            if lags:
                self._recorder.delivery_lags(lags)
        done = list(delivered)
        for reason, ops in result.dropped.items():
            if self._spool is not None and (reason == "shutdown" or (reason == "expired" and self._closed)):
                # Kept in the spool for the next process: at exit a dead endpoint uses up the
                # retries in seconds, and the spool exists precisely to outlive such an outage.
                self._kept_in_spool += len(ops)
                continue
            detail = self._sender.last_rejection if reason == "rejected" else ""
            self._drop(ops, reason, detail)
            done.extend(ops)
        if self._spool is not None and done:
            try:
                self._spool.ack(done)
            except Exception as exc:  # the rows stay; the next process resends (deduped by id)
                self._counters.error("spool ack", exc)
        with self._lock:
            self._pending -= len(batch)
            self._inflight -= len(batch)
            lane.inflight_from = None
            pending = self._pending
            self._progress.notify_all()
            if self._space_waiters:
                self._space.notify(self._space_waiters)
            reload = self._spilled > 0 and not self._reloading and pending <= self._config.max_queue_size // 2
            if reload:
                self._reloading = True
        self._recorder.queue_size(pending)
        if self._spool is not None:
            self._recorder.spool_operations(self._spool.count())
        if reload:
            self._reload()

    def _reload(self) -> None:
        """Move spilled operations from the spool back into the lanes, oldest first."""
        assert self._spool is not None
        try:
            ops = self._spool.reload(max(1, self._config.max_queue_size // 2))
        except Exception as exc:  # rows stay on disk for the next process
            self._counters.error("spool reload", exc)
            ops = []
        with self._lock:
            # Invariant: the spilled count drops in the same critical section that queues the
            # reloaded operations, so flush() never sees them in neither place.
            for op in ops:
                self._push_locked(op)
            self._reloading = False
            self._reloads += 1
            self._spilled = max(0, self._spilled - len(ops)) if ops else 0
            self._progress.notify_all()

    def _push(self, op: Operation) -> None:
        with self._lock:
            self._push_locked(op)

    def _push_locked(self, op: Operation) -> None:
        """Append an already accepted operation regardless of the queue bound (lock held)."""
        lane = self._lanes[hash(op.shard_key) % len(self._lanes)]
        if not self._threads:
            self._start()
        if not lane.queue:
            lane.first_at = self._clock()
        lane.queue.append(op)
        lane.next_seq += 1
        lane.bytes += op.size
        self._pending += 1
        if lane.idle:
            lane.idle = False
            lane.cond.notify()

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Send partial batches now; True once everything accepted so far was delivered or
        finally failed (spilled operations included), False on timeout."""
        if self._pid != os.getpid():
            self._after_fork()
            return True
        if threading.current_thread() in self._threads:
            return False  # called from a lane (e.g. a hook): waiting for ourselves would deadlock
        end = time.monotonic() + max(0.0, timeout)
        while True:
            generation = self._reloads
            if not self._flush_lanes(end):
                return False
            with self._lock:
                # Reloaded operations queued after our targets were taken need another round.
                if (self._spilled == 0 or self._closed) and generation == self._reloads:
                    return True
                if self._spilled == 0:
                    continue
                mine = not self._reloading
                if mine:
                    self._reloading = True
                if not mine:  # a lane is reloading right now: wait for its progress
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    self._progress.wait(min(left, 0.05))
            if mine:
                self._reload()

    def _flush_lanes(self, end: float) -> bool:
        with self._lock:
            targets = []
            for lane in self._lanes:
                targets.append(lane.next_seq)
                lane.flush_upto = max(lane.flush_upto, lane.next_seq)
                if lane.idle:
                    lane.idle = False
                    lane.cond.notify()
            while True:
                if all(lane.low >= target for lane, target in zip(self._lanes, targets, strict=False)):
                    return True
                if not any(t.is_alive() for t in self._threads):
                    return False
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(min(left, 0.5))

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout``, then stop; idempotent. A request in flight gets at most the
        remaining time; what is left is counted as dropped ``shutdown`` (or kept in the spool)."""
        if self._pid != os.getpid():
            self._after_fork()
        end = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._deadline = self._clock() + max(0.0, timeout)
            for lane in self._lanes:
                lane.idle = False
                lane.cond.notify()
            self._space.notify_all()
        current = threading.current_thread()
        if current not in self._threads:  # never wait for (or join) ourselves
            with self._lock:
                while self._pending - self._spilled > 0 and any(t.is_alive() for t in self._threads):
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._progress.wait(min(left, 0.5))
            for thread in self._threads:
                thread.join(max(0.0, min(0.05, end - time.monotonic())))
        leftovers: list[Operation] = []
        with self._lock:
            for lane in self._lanes:
                leftovers.extend(lane.queue)
                self._pending -= len(lane.queue)
                lane.queue.clear()
                lane.bytes = 0
                lane.cond.notify()
        if self._inflight:
            logger.warning(
                "cioguard: %d operation(s) still in flight at the shutdown deadline; "
                "their outcome is unknown (they are counted when the request ends)",
                self._inflight,
            )
        if leftovers and self._spool is None:
            self._drop(leftovers, "shutdown")
        elif leftovers or self._spilled or self._kept_in_spool:
            logger.warning(
                "cioguard: %d operation(s) kept in the spool for the next process",
                len(leftovers) + self._spilled + self._kept_in_spool,
            )
        # Drops held back by the once-a-minute log limit are reported now: none stays silent.
        self._counters.log_unlogged()
        if self._spool is not None:
            self._spool.close(max(0.0, end - time.monotonic()))
        if self._own_transport and self._inflight == 0:
            close = getattr(self._transport, "close", None)
            if callable(close):
                close()

    def _at_exit(self) -> None:
        if self._pid == os.getpid():
            self.shutdown(self._config.exit_timeout)

    def stats(self) -> dict[str, Any]:
        """Counters for scripts and tests (see ``cioguard.stats()``)."""
        out = self._counters.snapshot()
        with self._lock:
            out["queue_size"] = self._pending
            out["in_flight"] = self._inflight
            out["spilled"] = self._spilled
        out["queue_capacity"] = self._config.max_queue_size
        out["spool_size"] = self._spool.count() if self._spool is not None else 0
        out["running"] = any(t.is_alive() for t in self._threads)
        return out


def _call(ref: weakref.ReferenceType[DeliveryEngine], name: str) -> None:
    engine = ref()
    if engine is not None:
        try:
            getattr(engine, name)()
        except Exception as exc:  # hooks run inside fork()/exit: never raise
            logger.error("cioguard delivery: %s failed: %r", name, exc)
