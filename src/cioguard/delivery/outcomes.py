"""What happened to operations, told once per batch: counters, metrics, ``on_drop`` and flush markers.

::

    out = Outcomes(counters, recorder, on_drop)
    out.intake(ops)                    # calls/enqueued metrics, per method, for a whole intake
    out.delivered(ops, now)            # per-method metric, delivery lag (counted by the sender)
    out.drop(ops, "rejected", detail)  # dropped counter + metric + rate-limited log + on_drop

``on_drop(reason, count, methods)`` gets ``methods`` as ``{sdk method name: count}`` and never a
payload; an exception it raises is logged (at most once a minute) and swallowed.
:class:`Mark` is what ``flush()`` puts in the caller queue to learn when everything accepted
before it has finished.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from operator import attrgetter

from cioguard.delivery.config import DropHook
from cioguard.delivery.counters import Counters
from cioguard.delivery.slices import CHUNK, handoff
from cioguard.delivery.wire import group_methods
from cioguard.operations.model import Operation
from cioguard.telemetry.recorder import Recorder

_US = 1e-6
_caller_us = attrgetter("_caller_us")
_enqueued_at = attrgetter("_enqueued_at")
_created_at = attrgetter("created_at")


def delivery_lags(ops: Sequence[Operation], now: float) -> list[float]:
    """Seconds from acceptance to ``now`` (the engine's monotonic clock) per operation, never
    below 0. Snapshots keep no monotonic time: theirs follows from ``created_at`` and the clocks
    now. C-level arithmetic for a whole batch (up to 2 000 operations in one short GIL stretch)."""
    stamps = list(map(_enqueued_at, ops))
    missing = stamps.count(None)
    if not missing:  # (taken in by the engine: its clock)
        lags = list(map(now.__sub__, filter(None, stamps)))
    elif missing == len(stamps):
        shift = now - time.monotonic() + time.time()  # lag = now - (mono - (wall - created))
        lags = list(map(shift.__sub__, map(_created_at, ops)))
    else:
        lags = [now - op.enqueued_at for op in ops if op.enqueued_at]
    return [lag if lag > 0.0 else 0.0 for lag in lags] if min(lags, default=0.0) < 0.0 else lags


class Mark:
    """A flush marker. ``upto``/``remaining`` are set by the sender thread that takes it in."""

    __slots__ = ("event", "ok", "remaining", "spill_upto", "upto")

    def __init__(self, spill_upto: int) -> None:
        self.event = threading.Event()
        self.ok = False
        self.spill_upto = spill_upto
        self.upto = 0
        self.remaining = 0

    def finish(self, ok: bool) -> None:
        if not self.event.is_set():
            self.ok = ok
            self.event.set()


class Outcomes:
    def __init__(self, counters: Counters, recorder: Recorder, on_drop: DropHook | None) -> None:
        self._counters = counters
        self._recorder = recorder
        self._on_drop = on_drop
        self._deferred: deque[tuple[str, int, dict[str, int]]] = deque()

    def intake(self, ops: Sequence[Operation]) -> None:
        """calls/enqueued metrics for operations taken in, in chunks (short GIL stretches)."""
        for start in range(0, len(ops), CHUNK):
            if start:
                handoff()
            self._intake(ops[start : start + CHUNK])

    def _intake(self, ops: Sequence[Operation]) -> None:
        methods = group_methods(ops)
        if len(methods) == 1:  # the usual intake: one method, C-level conversions only
            method, count = next(iter(methods.items()))
            seconds = list(map(_US.__mul__, sorted(map(_caller_us, ops))))
            self._recorder.calls(method, "background", seconds)
            self._recorder.enqueued(method, count)
            return
        durations: dict[str, list[float]] = {}
        for op in ops:
            durations.setdefault(op.method, []).append(op.caller_seconds)
        for method, values in durations.items():
            self._recorder.calls(method, "background", values)
            self._recorder.enqueued(method, len(values))

    def delivered(self, ops: Sequence[Operation], now: float) -> None:
        """Metrics of delivered operations (the sender counts them for ``stats()``, under its lock,
        when their request ends)."""
        for method, count in group_methods(ops).items():
            self._recorder.delivered(method, count)
        for start in range(0, len(ops), CHUNK):  # lags in chunks (short GIL stretches)
            if start:
                handoff()
            lags = delivery_lags(ops[start : start + CHUNK], now)
            if lags:
                self._recorder.delivery_lags(lags)

    def drop(
        self,
        ops: Sequence[Operation],
        reason: str,
        detail: str = "",
        defer: bool = False,
        counted: bool = False,
    ) -> None:
        if ops:
            self.count(reason, len(ops), group_methods(ops), detail, defer, counted)

    def count(
        self,
        reason: str,
        count: int,
        methods: dict[str, int],
        detail: str = "",
        defer: bool = False,
        counted: bool = False,
    ) -> None:
        """Count ``count`` lost operations (also those that never became an ``Operation``).

        ``defer=True`` (a caller holding the engine's lock): ``on_drop`` runs at the next
        :meth:`run_hooks`, so user code never runs under the lock (it may call ``flush()``).
        ``counted``: ``stats()`` counted them already (the metric and ``on_drop`` remain)."""
        if count <= 0:
            return
        if not counted:
            self._counters.drop(reason, count, detail)
        self._recorder.dropped(reason, count)
        if self._on_drop is None:
            return
        if defer:
            self._deferred.append((reason, count, methods))
        else:
            self._notify(reason, count, methods)

    def run_hooks(self) -> None:
        """Tell ``on_drop`` of the drops counted with ``defer=True`` (without the engine's lock)."""
        while self._deferred:
            try:
                reason, count, methods = self._deferred.popleft()
            except IndexError:  # another thread took the last one
                return
            self._notify(reason, count, methods)

    def _notify(self, reason: str, count: int, methods: dict[str, int]) -> None:
        hook = self._on_drop
        if hook is not None:
            try:
                hook(reason, count, methods)
            except Exception as exc:  # user code: logged, never raised into the sender
                self._counters.error("on_drop hook", exc)
