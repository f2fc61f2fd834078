"""The background delivery engine: accept operations for almost nothing, deliver them from sender threads.

::

    from cioguard.delivery import DeliveryConfig, DeliveryEngine

    engine = DeliveryEngine(DeliveryConfig(flush_interval=0.5))
    engine.submit(op)          # one deque.append (+ a wake if a sender idles); False = dropped, counted
    engine.flush(timeout=5)    # True only if everything accepted before the call was delivered
    engine.shutdown(timeout=5) # idempotent; later submits are dropped with reason "shutdown"
    engine.stats()             # queue size, accepted, delivered, dropped by reason, outage ...

The caller's thread never reads the operation (its size, route, person or endpoint are looked at
by the sender), never takes a lock on the normal path and never calls ``os.getpid()``: an
``os.register_at_fork`` hook gives a child fresh state, threads and HTTP session, and it never
resends the parent's operations. Threads start on the first ``submit``; they are daemons, and an
``atexit`` hook shuts down within ``exit_timeout``, so a dead endpoint never hangs exit.
``flush`` and ``shutdown`` are safe from finalizers and signal handlers (re-entrant lock,
bounded waits, never raise).
"""

from __future__ import annotations

import atexit
import random as _random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from cioguard import forks
from cioguard.delivery.backpressure import backpressure
from cioguard.delivery.closing import close_core
from cioguard.delivery.config import DeliveryConfig
from cioguard.delivery.counters import Counters, logger
from cioguard.delivery.dispatch import Core
from cioguard.delivery.durable import SpoolLink, open_spool
from cioguard.delivery.outcomes import Mark
from cioguard.delivery.overflow import admit, refuse
from cioguard.delivery.sender import BatchSender, ResponseHook
from cioguard.delivery.spool import Spool
from cioguard.delivery.transport import RequestsTransport, Transport
from cioguard.operations.deferred import Snapshot, materialize
from cioguard.operations.model import Endpoint, Operation
from cioguard.telemetry.recorder import NullRecorder, Recorder


class DeliveryEngine:
    """Queues operations and delivers them in the background, in order per person. Thread-safe."""

    #: ``merge_customers`` is ordered on the sender (a barrier of its endpoint): callers never wait.
    orders_merges = True

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
        wall: Callable[[], float] = time.time,
        resolve_endpoint: Callable[[Endpoint], Endpoint] | None = None,
    ) -> None:
        self._config = config or DeliveryConfig()
        self._recorder: Recorder = recorder or NullRecorder()
        self._tracer = tracer
        self._own_transport = transport is None
        self._transport: Transport = transport or RequestsTransport(self._config.lanes)
        self._clock = clock
        self._wall = wall
        self._rng = random or _random.Random()
        self._on_response = on_response
        self._sleep = sleep
        ref = weakref.ref(self)
        self._spool: Spool | None = open_spool(
            self._config, self._recorder, lambda count: _call(ref, "_claimed", count), resolve_endpoint
        )
        self._core = self._new_core()
        #: The current core's inbox (read lock-free by the caller's fast path: its length only).
        self.inbox = self._core.inbox
        self._drops_seen = 0  # drops a flush told of (the core's counter total then)
        self._flush_lock = threading.Lock()
        self._kept = 0
        #: Set when a second ``instrument()`` retires this engine: calls that reach it after its
        #: shutdown (a thread already inside an old wrapper) go to the new one instead of dropping.
        self.successor: Any = None
        forks.in_child(lambda: _call(ref, "_after_fork"))
        atexit.register(_call, ref, "_at_exit")
        self._recover()

    def _new_core(self) -> Core:
        def sender(counters: Counters, deadline: Callable[[], float | None]) -> BatchSender:
            return BatchSender(
                self._config,
                self._transport,
                self._recorder,
                counters,
                self._clock,
                self._sleep,
                self._rng,
                deadline,
                self._tracer,
                self._on_response,
            )

        core = Core(
            self._config,
            self._recorder,
            sender,
            lambda counters: SpoolLink(self._spool, counters),
            self._clock,
            self._wall,
            self._rng,
        )
        # Invariant: running sender threads keep the engine alive (its atexit hook holds only a
        # weak reference), so operations of a dropped engine are still delivered at exit.
        core.owner = self
        return core

    def _recover(self) -> None:
        core = self._core
        recovered, rest = core.link.recover(self._config.max_queue_size)
        if recovered or rest:
            logger.info("cioguard: delivering %d operation(s) left in the spool", len(recovered) + rest)
            with core.lock:
                core.spilled += rest
                core.spill_in += rest
                for op in recovered:  # already rows: intake must not write them again
                    core.adopt(op)
            core.wake()

    def _claimed(self, count: int) -> None:
        """The spool claimed ``count`` rows of a dead owner while running: they wait on disk."""
        core = self._core
        with core.lock:
            core.spilled += count
            core.spill_in += count
        core.wake()  # a sender thread reloads them (never this spool thread: it may be mid-write)

    def _after_fork(self) -> None:
        # Nothing of the parent's is acquired or joined: its threads do not exist here.
        reset = getattr(self._transport, "reset_after_fork", None)
        if callable(reset):
            reset()
        self._core = self._new_core()
        self.inbox = self._core.inbox
        self._drops_seen = 0  # the new core counts from 0
        self._flush_lock = threading.Lock()
        self._core.link.after_fork()

    # -- caller side ---------------------------------------------------------------------------

    def submit(self, op: Operation) -> bool:
        """Accept ``op`` for delivery. Returns False when it was dropped (already counted)."""
        core = self._core
        if core.closed:
            successor = self.successor
            if successor is not None:  # retired by a second instrument(): a call caught mid-swap
                return bool(successor.submit(op))
            return self._refuse(op, "shutdown")
        inbox = core.inbox
        queued = len(inbox) + core.sched.size
        if core.spilled or queued >= core.capacity:
            return self._overflow(core, op)
        if core.keep_on_caller:
            core.link.keep(op)  # spool (opt-in): the row is written or queued before we return
        inbox.append(op)
        if core.idle or len(inbox) >= core.nudge_at:
            core.wake()
        if queued >= core.high_water:
            backpressure(core, queued)
        return True

    def submit_snapshot(self, item: Snapshot) -> bool:
        """:meth:`submit` for the caller's fast path: a :data:`Snapshot` tuple, which the sender
        makes an :class:`Operation` at intake. Any slow path (shutdown, a full queue, spilled
        rows, a spool written on the caller) gets the operation made here first."""
        core = self._core
        inbox = core.inbox
        queued = len(inbox) + core.sched.size
        if core.closed or core.spilled or core.keep_on_caller or queued >= core.capacity:
            return self.submit(materialize(item))
        inbox.append(item)
        if core.idle or len(inbox) >= core.nudge_at:  # (as in submit: no call on the common path)
            core.wake()
        if queued >= core.high_water:
            backpressure(core, queued)
        return True

    def _overflow(self, core: Core, op: Operation) -> bool:
        """The slow path: a full queue, or spilled rows waiting on disk (:mod:`.overflow`)."""
        try:
            with core.lock:
                if not admit(core, op):
                    return False
        finally:
            core.out.run_hooks()  # on_drop never runs under the lock (it may call flush())
        if core.idle or len(core.inbox) >= core.nudge_at:
            core.wake()
        return True

    def _refuse(self, op: Operation, reason: str) -> bool:
        return refuse(self._core, op, reason)

    def record_drop(self, reason: str, count: int = 1, detail: str = "", method: str = "") -> None:
        """Count operations lost before they reached the engine (an oversize call refused by the
        caller's side): in ``stats()``, the metric, the drop log and ``on_drop`` like any other."""
        core = self._core
        with core.lock:  # (stats() reads under it: never accepted without its drop)
            core.counters.add("accepted", count)  # (each ends delivered, dropped or queued)
            core.out.count(reason, count, {method: count} if method else {}, detail, defer=True)
        core.out.run_hooks()  # on_drop never runs under the lock

    # -- lifecycle -----------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """True only when everything accepted before the call was delivered and nothing was
        dropped or rejected since the previous flush; False on timeout (``stats()`` says why)."""
        core = self._core
        try:
            if threading.current_thread() in core.threads:
                return False  # called from a sender (a hook): waiting for ourselves would deadlock
            baseline = self._drops_seen  # drops counted before this call were told already
            done = True
            mark: Mark | None = None
            # ``unsettled``: a request's operations left the queue but are not counted yet.
            if (core.pending() or core.unsettled) and not core.stopped:
                with core.lock:  # (re-entrant) a close between the test and the append would
                    if not core.stopped:  # never take the marker in: it would wait for nothing
                        mark = Mark(core.spill_in)
                        core.inbox.append(mark)
            if mark is not None:
                end = time.monotonic() + max(0.0, timeout)
                core.wake()
                if not core.threads:  # no sender thread could start: this thread sends
                    core.run((mark.event.is_set, core.clock() + max(0.0, timeout)))
                done = mark.event.wait(max(0.0, end - time.monotonic())) and mark.ok
                mark.finish(False)  # (no-op when done) a marker nobody waits for is let go
            elif core.stopped and (core.pending() or core.sched.size):
                done = False  # left at shutdown: counted as dropped, or kept in the spool
            core.count_spool_losses()
            core.out.run_hooks()
            total = sum(core.counters.snapshot()["dropped"].values())
            with self._flush_lock:
                # Concurrent flushes each compare with what was told before they began: one
                # returning first does not hide the drops from the other.
                self._drops_seen = max(self._drops_seen, total)
            return done and total == baseline
        except Exception as exc:  # flush runs in finalizers and signal handlers: never raise
            logger.error("cioguard delivery: flush failed: %r", exc)
            return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout``, then stop; idempotent. What is left is counted as dropped
        ``shutdown`` (or, with a spool, kept on disk for the next process: never deleted).
        Never raises (it runs in finalizers and signal handlers)."""
        try:
            self._shutdown(timeout)
        except Exception as exc:
            logger.error("cioguard delivery: shutdown failed: %r", exc)

    def _shutdown(self, timeout: float) -> None:
        core = self._core
        kept = close_core(core, timeout)
        if kept is None:
            return  # closed already
        self._kept = kept
        if self._own_transport and core.inflight == 0:
            close = getattr(self._transport, "close", None)
            if callable(close):
                close()

    def _at_exit(self) -> None:
        self.shutdown(self._config.exit_timeout)

    def queued(self) -> int:
        """Operations waiting, read without the engine's lock (which a sender holds while it works):
        cheap enough for a caller's check."""
        core = self._core
        return len(core.inbox) + core.sched.size

    def nearly_full_for(self) -> tuple[float, float]:
        """(fill, seconds): the queue's fill now, and how long it has stayed nearly full (80 %;
        dips of a few seconds included), lock-free for a caller's CIO011 check."""
        core = self._core
        return (len(core.inbox) + core.sched.size) / core.capacity, core.fill.held(core.clock())

    def stats(self) -> dict[str, Any]:
        """Counters for scripts and tests (see ``cioguard.stats()``)."""
        core = self._core
        with core.lock:  # accepted == delivered + dropped + queue_size at every moment
            out = core.counters.snapshot()
            held = core.sched.size
            waiting = len(core.inbox)  # (a flush marker waiting there is counted too)
        out["accepted"] += waiting
        # Once stopped, what the scheduler holds was counted (dropped, or kept in the spool).
        out["queue_size"] = (0 if core.stopped else held) + waiting
        # Requests still unanswered after a shutdown were counted already (dropped, or kept):
        # a thread may still wait for their answer, but the engine has stopped.
        out["in_flight"] = 0 if core.stopped else core.inflight
        out["spilled"] = core.spilled
        out["queue_capacity"] = self._config.max_queue_size
        out["spool_size"] = core.link.count()
        out["spool"] = core.link.health()
        out["kept_in_spool"] = self._kept
        out["running"] = not core.stopped and any(t.is_alive() for t in core.threads)
        with core.lock:
            out["outage"] = sorted(core.labels.get(k, k) for k, h in core.health.items() if h.outage)
        return out


def _call(ref: weakref.ReferenceType[DeliveryEngine], name: str, *args: Any) -> None:
    engine = ref()
    if engine is not None:
        try:
            getattr(engine, name)(*args)
        except Exception as exc:  # hooks run inside fork()/exit: never raise
            logger.error("cioguard delivery: %s failed: %r", name, exc)
