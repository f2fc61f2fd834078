"""Pitfall rules run on the sender: when they may wait, and the resolver that runs them there.

In ``pitfalls="warn"`` mode a background call does not need its findings before it returns: a
warning only has to name the user's line and obey Python's filters. So the caller captures its
call site (:func:`cioguard.pitfalls.location.call_site`, one shared tuple per line) and queues the
call; the sender thread runs the rules in submission order (the order operations are completed)
and warns with :func:`warnings.warn_explicit` against the user's module registry, so the
once-per-location default, ``-W`` options and ``logging.captureWarnings`` behave as before::

    gate = DeferralGate()
    if gate.open():                                   # cheap: cached on the filters' identity
        op._pending = DeferredRules(op._pending, engine, call, call_site(1))

The rules stay on the caller (and raise there, before anything is queued) whenever waiting could
change what the user sees: ``pitfalls="error"``, ``fix_timestamps`` (the rules change the call that
is sent), a filter that could turn a :class:`PitfallWarning` into an exception (``-W error``,
``simplefilter("error")``, pytest's ``filterwarnings=error``) or hide it (``"ignore"``: a
``catch_warnings`` block around the call must still hide it), and while warnings are being
recorded (``catch_warnings(record=True)``, ``pytest.warns``, ``recwarn``): a test that looks right
after the call sees the warning.

Known limits: the rules read the call's arguments when the sender gets to them (what is *sent* is
the snapshot taken at the call; a dict changed right after the call may give a finding about the
changed dict), and an operation dropped from a full queue by ``overflow="drop_oldest"`` is never
checked.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any

from cioguard.delivery.slices import may_go_on
from cioguard.operations.model import Call
from cioguard.pitfalls.categories import Finding, PitfallWarning

if TYPE_CHECKING:
    from cioguard.operations.model import Operation, Resolver
    from cioguard.pitfalls.engine import PitfallEngine
    from cioguard.pitfalls.location import Location

logger = logging.getLogger("cioguard.pitfalls")

#: Longest stretch of rule checks between two GIL hand-offs on the sender (seconds).
_SLICE_SECONDS = 0.0001
#: Module attributes (looked up at each call) so tests can count hand-offs.
_now = time.perf_counter
_handoff = time.sleep

#: Filter actions that must act at the call itself (raise there, or hide inside a block).
_AT_CALL = frozenset({"error", "ignore"})


def filters_allow_deferral(filters: Any, show_impl: Any) -> bool:
    """Whether warnings under ``filters`` (``warnings.filters``) may be issued later, elsewhere.

    ``show_impl`` is ``warnings._showwarnmsg_impl``: ``catch_warnings(record=True)`` replaces it with
    a list's ``append`` (the original is the warnings module's own function).
    """
    if getattr(show_impl, "__module__", None) != "warnings":
        return False  # warnings are being recorded (or shown by something unknown): stay exact
    for entry in filters:
        try:
            action, category = entry[0], entry[2]
            if action in _AT_CALL and (
                issubclass(PitfallWarning, category) or issubclass(category, PitfallWarning)
            ):
                return False
        except (TypeError, IndexError):  # a malformed entry: stay exact
            return False
    return True


class DeferralGate:
    """:func:`filters_allow_deferral` for the current filters, recomputed only when they change.

    The filters are identified by the list object, its length and its first entry (what
    ``simplefilter``, ``filterwarnings`` and ``catch_warnings`` change) plus the recording hook.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        #: (filters, their length, their first entry, the recording hook, the answer): replaced as
        #: one tuple, so a thread never reads one filter list's signature with another's answer.
        self._state: tuple[object, int, object, object, bool] = (None, -1, None, None, False)

    def open(self) -> bool:
        filters = warnings.filters
        impl = getattr(warnings, "_showwarnmsg_impl", None)
        known, length, first, known_impl, answer = self._state
        if (
            filters is known
            and impl is known_impl
            and len(filters) == length
            and (not filters or filters[0] is first)
        ):
            return answer
        answer = filters_allow_deferral(filters, impl)
        self._state = (filters, len(filters), filters[0] if filters else None, impl, answer)
        return answer


class Backlog:
    """Deferred checks in submission order; each runs once, oldest first, whoever gets there.

    The sender runs a check when it completes its operation (and every older one still waiting);
    a caller whose rules cannot wait (the filters changed) runs all waiting checks first, so the
    rules' state (identified people, event names) always sees calls in the order they were made.
    """

    def __init__(self) -> None:
        #: Checks in submission order: :class:`DeferredRules`, or the :data:`QuickCheck` tuples the
        #: caller's fast path appends here directly (the deque is kept for life, a fork clears it,
        #: so a bound ``append`` stays valid).
        self.waiting: deque[DeferredRules | QuickCheck] = deque()
        # Reentrant: a warning hook on the sender may itself call the SDK (and drain).
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.waiting)

    def add(self, check: DeferredRules) -> None:
        self.waiting.append(check)  # before the operation is queued: the sender always finds it

    def run(self, until: DeferredRules | None = None) -> None:
        """Run waiting checks oldest first, up to ``until`` (``None``: all of them)."""
        with self._lock:
            if until is not None and until.done:
                return
            waiting = self.waiting
            # Callers share the GIL with this loop: hand it over between short slices, so a call
            # never waits for a long backlog (its p99.9 latency). The process's switch interval is
            # never changed.
            started = _now()
            slice_ends = started + _SLICE_SECONDS
            while waiting:
                now = _now()
                if now >= slice_ends:
                    if may_go_on(started, now):  # callers under backpressure: a longer stretch
                        slice_ends = now + _SLICE_SECONDS
                    else:
                        _handoff(0)
                        started = _now()
                        slice_ends = started + _SLICE_SECONDS
                check = waiting.popleft()
                if not isinstance(check, DeferredRules):
                    run_quick(check)
                    continue
                check.done = True
                check.run()
                if check is until:
                    return

    def drain(self) -> None:
        """Run every waiting check (the sender, before it completes an operation)."""
        if self.waiting:
            self.run()

    def reset_after_fork(self) -> None:
        self._lock = threading.RLock()
        self.waiting.clear()  # the parent's calls: the parent checks them


class DeferredRules:
    """A :class:`~cioguard.operations.model.Resolver` that completes the operation, then runs the rules.

    It wraps the operation's own resolver (lanes, ULID; ``None`` for operations that need none) and
    runs on the thread that first reads the operation (the sender, in queue order), under the
    operations' lock; the rules run once (see :class:`Backlog`). Never raises: an ``"error"``
    filter installed since the call only logs.
    """

    __slots__ = ("backlog", "body", "call", "capture", "done", "engine", "inner", "where")

    def __init__(
        self,
        inner: Resolver | None,
        engine: PitfallEngine,
        call: Call,
        where: Location | None,
        capture: Any,
        backlog: Backlog,
    ) -> None:
        self.inner = inner
        self.engine = engine
        self.call = call
        self.where = where
        self.capture = capture
        self.backlog = backlog
        self.done = False
        #: An event's JSON whose values the caller's snapshot did not examine (a ``null`` may be an
        #: ``inf``, a UUID-shaped string a ``UUID``): the rules look behind it (CIO014).
        self.body: bytes | None = None

    def resolve(self, op: Operation) -> None:
        inner = self.inner
        if inner is not None:
            inner.resolve(op)
        if not self.done:
            self.backlog.run(self)

    def run(self) -> None:
        """The rules over the call, warnings at the captured call site (nothing raised)."""
        run_rules(self.engine, self.call, self.where, self.capture, self.body)
        self.call = self.capture = self.body = None  # type: ignore[assignment]  # nothing kept once checked


#: A check queued by the caller's fast path, as one tuple (no objects made on the caller):
#: ``(engine, method, customer_id, name, data, timestamp, event_id, where, capture, body)``.
QuickCheck = tuple[Any, str, Any, Any, Any, Any, Any, "Location | None", Any, "bytes | None"]


def run_rules(
    engine: PitfallEngine, call: Call, where: Location | None, capture: Any, body: bytes | None
) -> None:
    """The rules over ``call``, warnings at the call site ``where``; never raises.

    ``body``: the event data's JSON (or the whole v2 entry's) when the caller did not examine its
    values (CIO014 looks behind its ``null`` values and UUID-shaped strings); ``capture``: the
    call's trace capture (its ``codes`` get the findings, for the PRODUCER span's events).
    """
    try:
        findings, _ = engine.check_call(call)
        _conclude(engine, findings, call.data, where, capture, body)
    except PitfallWarning as warning:  # the filters changed to "error" after the call
        logger.warning("cioguard pitfall (not raised: found after the call): %s", warning)
    except Exception:  # a rule or warning-hook failure must never reach the sender
        logger.debug("deferred pitfall rules failed", exc_info=True)


def run_quick(check: QuickCheck) -> None:
    """:func:`run_rules` for a :data:`QuickCheck` tuple (the same findings; no ``Call`` is made)."""
    engine, method, customer_id, name, data, timestamp, event_id, where, capture, body = check
    try:
        findings = engine.check_fields(method, customer_id, name, data, timestamp, event_id)
        _conclude(engine, findings, data, where, capture, body)
    except PitfallWarning as warning:  # the filters changed to "error" after the call
        logger.warning("cioguard pitfall (not raised: found after the call): %s", warning)
    except Exception:  # a rule or warning-hook failure must never reach the sender
        logger.debug("deferred pitfall rules failed", exc_info=True)


def _conclude(
    engine: PitfallEngine,
    findings: list[Finding],
    data: Any,
    where: Location | None,
    capture: Any,
    body: bytes | None,
) -> None:
    if body is not None:
        unsendable = engine.check_values(data, body, where)
        if unsendable is not None:
            findings = [*findings, unsendable]
    if findings:
        if capture is not None:
            capture.codes = tuple(finding.code for finding in findings)  # PRODUCER span events
        engine.emit_at(findings, where)
