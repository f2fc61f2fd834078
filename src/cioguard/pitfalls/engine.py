"""The pitfall engine: runs the rules, then warns, raises or stays silent by mode, and counts.

The instrumentation builds one engine per ``instrument()`` and calls it around every SDK call::

    engine = PitfallEngine(PitfallConfig(mode="warn", disabled=frozenset({"CIO003"})))
    findings, call = engine.check_call(call, mode="background")   # before serialising
    engine.emit(findings)         # at the user's line (found past cioguard, wrapt, SDK, stdlib)
    engine.report(engine.check_response("track", 429))           # sender side: log once, count

Modes: ``"warn"`` issues each finding with :func:`warnings.warn_explicit` at the application's
line (so Python's filters apply: ``-W error::cioguard.PitfallWarning`` turns them into exceptions at
the call, ``"ignore"`` hides them); ``"error"`` raises the first finding's warning instance (a
:class:`PitfallWarning`, i.e. an ``Exception``) from ``emit`` after counting all of them; ``"off"``
runs no rule at all. Every finding is counted with ``recorder.pitfall(code)`` even when a filter
hides the warning (repeats at a line already shown are counted in bulk, see :mod:`.emitter`).

A background call may leave its rules to the sender (:meth:`PitfallEngine.defers`,
:meth:`PitfallEngine.check_later`, see :mod:`.deferral`): "warn" mode only, and only while no filter
could raise or hide the warning at the call and none records it.

Messages are constant per code and call site; what varies goes to ``Finding.detail`` (the debug
log). Calls made by cioguard itself (webhook actions, replay, the worker, the demo's runner)
are never findings: :mod:`.location` tells them apart while looking for the user's line.

Findings from the sender thread (401/429 answers) go through :meth:`report`, which counts, logs on
logger ``cioguard.pitfalls`` once per code with the fix, and warns at the line that built the client
(or called ``instrument()``) — never raising, whatever the mode or filters.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from cioguard import forks
from cioguard.operations.model import Call
from cioguard.pitfalls.calls import CallRules
from cioguard.pitfalls.categories import ALL_CODES, Finding
from cioguard.pitfalls.config import PitfallConfig, PitfallMode
from cioguard.pitfalls.deferral import Backlog, DeferralGate, DeferredRules
from cioguard.pitfalls.emitter import Emitter
from cioguard.pitfalls.limits import MAX_EVENT_DATA_BYTES, data_size_finding
from cioguard.pitfalls.location import INTERNAL, Location, locate, origin, user_frame
from cioguard.pitfalls.transport import (
    ClientBook,
    blocking_finding,
    key_shape_finding,
    rate_limited_finding,
    repeated_client_finding,
    unauthorized_finding,
)
from cioguard.pitfalls.values import NullHints
from cioguard.scope import current_request
from cioguard.telemetry.recorder import Recorder

__all__ = ["PitfallConfig", "PitfallEngine", "PitfallMode"]  # the config lives in .config

logger = logging.getLogger("cioguard.pitfalls")

#: Methods whose rules are ``CallRules.event`` (background mode adds nothing to them).
_EVENTS = frozenset({"track", "backfill", "pageview", "track_anonymous"})


_engines: weakref.WeakSet[PitfallEngine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_engines):
        engine._reset_after_fork()


forks.in_child(_after_fork_in_child)


class PitfallEngine:
    """Runs the pitfall rules; thread-safe; one per ``instrument()``."""

    def __init__(
        self,
        config: PitfallConfig | None = None,
        recorder: Recorder | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config = config or PitfallConfig()
        if config.mode not in ("warn", "error", "off"):
            raise ValueError(f"pitfalls mode must be warn, error or off, not {config.mode!r}")
        enabled = ALL_CODES - config.disabled if config.mode != "off" else frozenset()
        if not config.track_before_identify:
            enabled -= {"CIO003"}
        self.enabled: frozenset[str] = enabled
        self._off = config.mode == "off"
        self._clock = clock
        self._calls = CallRules(
            enabled,
            fix_timestamps=config.fix_timestamps,
            max_event_names=config.max_event_names,
            rate_limit=config.rate_limit,
            measure_event_data=config.measure_event_data,
            clock=clock,
        )
        self._handlers = self._calls.handlers if enabled else {}
        #: The event rules, when check_call would add nothing to them (no fix_timestamps).
        self._event = self._calls.event if enabled and not config.fix_timestamps else None
        self._clients = ClientBook()
        # Built inside instrument(): the origin is the application line that called it.
        self._out = Emitter(config.mode, recorder, origin(1))
        self._calls.count_only = self._out.count_later  # occurrences that warn nowhere (CIO006's bound)
        # Rules may wait for the sender only in "warn" mode, and only when they never change the call.
        self._may_defer = config.mode == "warn" and not config.fix_timestamps and bool(enabled)
        self._gate = DeferralGate()
        self._backlog = Backlog()
        self._nulls = NullHints()
        #: For the caller's fast path (:mod:`cioguard.instrumentation.express`): whether the rules
        #: may wait for the sender under the current filters (:meth:`defers` without the catch-up),
        #: and the checks waiting there.
        self.deferral_open = self._gate.open
        self.backlog = self._backlog
        _engines.add(self)

    @property
    def may_defer(self) -> bool:
        """Whether this configuration ever lets the rules wait for the sender ("warn" mode)."""
        return self._may_defer

    def _reset_after_fork(self) -> None:
        self._calls.reset_after_fork()
        self._clients.reset_after_fork()
        self._out.reset_after_fork()
        self._backlog.reset_after_fork()

    # -- checks -----------------------------------------------------------------------------------
    def check_call(self, call: Call, mode: str = "background") -> tuple[list[Finding], Call]:
        """Rules over one SDK call (before serialisation): findings, and the call to send.

        The call returned is ``call`` itself unless ``fix_timestamps`` corrected a millisecond
        timestamp; then it is a copy with fixed ``timestamp``/``data`` (the caller's dict is untouched).
        """
        # Hot path: one dict lookup to the method's handler (no handler: nothing to check).
        handler = self._handlers.get(call.method)
        try:
            if handler is not None:
                findings = handler(call, False)
                if mode == "blocking" or findings:
                    return self._calls.finish(call, mode, findings)
                return findings, call
            if mode == "blocking":
                return self._calls.finish(call, mode, [])
            return [], call
        except Exception:  # a rule bug must never break the user's call
            logger.debug("pitfall rules failed", exc_info=True)
            return [], call

    def check_client(self, kind: str, key: object = None, site_id: object = None) -> list[Finding]:
        """A ``CustomerIO`` (``kind="track"``) or ``APIClient`` (``"app"``) was built: CIO001, CIO009.

        CIO009 fires from the *second* client built for the same credentials (the first one, even
        built lazily inside a request, is how a client should be made). Clients cioguard builds for
        itself are neither checked nor counted.
        """
        where = locate(1)
        if where is INTERNAL or not self.enabled:
            return []
        if where is not None:
            self._out.client_sites.setdefault(kind, where)
        findings: list[Finding] = []
        if "CIO001" in self.enabled:
            shape = key_shape_finding(kind, key)
            if shape is not None:
                findings.append(shape)
        if "CIO009" in self.enabled:
            count = self._clients.built(kind, key, site_id)
            if count >= 2:
                findings.append(repeated_client_finding(kind, count, current_request() is not None))
        return findings

    def check_response(self, api: str, status_code: int) -> list[Finding]:
        """An HTTP answer (sender thread or blocking call): CIO001 for 401, CIO011 for 429."""
        if status_code == 401 and "CIO001" in self.enabled:
            return [unauthorized_finding(api)]
        if status_code == 429 and "CIO011" in self.enabled:
            return [rate_limited_finding(api)]
        return []

    def check_blocking(self, method: str, seconds: float) -> list[Finding]:
        """A call that really blocked the caller ``seconds``: CIO007 inside a request or an event loop."""
        if "CIO007" not in self.enabled or seconds < self.config.blocking_threshold_seconds:
            return []
        scope = current_request()
        if scope is not None:
            route = f"{scope.method} {scope.route}" if scope.route else None
            return [blocking_finding(method, seconds, "a web request", route)]
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return []
        return [blocking_finding(method, seconds, "the running asyncio event loop")]

    def check_queue(self, size: int, capacity: int) -> list[Finding]:
        """The queue's fill level (sender thread): CIO011 when it stays above 80 % of capacity."""
        if "CIO011" not in self.enabled:
            return []
        found = self._calls.rate.queue(size, capacity, self._clock(), self.config.queue_sustain_seconds)
        return [found] if found is not None else []

    def check_queue_held(self, fill: float, held_seconds: float) -> list[Finding]:
        """CIO011 when the engine reports its queue nearly full for ``held_seconds`` (at ``fill``)."""
        if "CIO011" not in self.enabled:
            return []
        found = self._calls.rate.queue_held(
            fill, held_seconds, self._clock(), self.config.queue_sustain_seconds
        )
        return [found] if found is not None else []

    def check_data_size(self, method: str, data_bytes: int) -> list[Finding]:
        """CIO014 for event data measured by the caller (serialised JSON bytes of ``data``)."""
        if "CIO014" not in self.enabled or data_bytes <= MAX_EVENT_DATA_BYTES:
            return []
        return [data_size_finding(method, data_bytes)]

    def check_values(self, data: Any, body: bytes, where: object = None) -> Finding | None:
        """CIO014 for a value behind the JSON ``body`` of an event's ``data`` that the caller's
        snapshot left unexamined (an ``inf`` sent as ``null``, a UUID object sent as its text);
        sender only. ``where``: the call site (its last data's ``None`` paths skip the walk)."""
        if "CIO014" not in self.enabled:
            return None
        return self._nulls.finding(data, body, where)

    def check_fields(
        self, method: str, customer_id: Any, name: Any, data: Any, timestamp: Any, event_id: Any
    ) -> list[Finding]:
        """``check_call(Call(...))[0]`` for a queued call's fields (the caller's fast path queues
        event calls only: any other method gets a ``Call`` without ``extra``); events make none."""
        event = self._event
        if event is not None and method in _EVENTS:
            try:
                return event(method, customer_id, name, data, timestamp)
            except Exception:  # a rule bug must never break the user's call
                logger.debug("pitfall rules failed", exc_info=True)
                return []
        return self.check_call(Call(method, customer_id, name, data, timestamp, event_id))[0]

    def defers(self) -> bool:
        """Whether a background call's rules may run later on the sender (see :mod:`.deferral`).

        True in "warn" mode (without ``fix_timestamps``) while no warning filter could raise or hide
        a pitfall warning at the call and none is being recorded; cached on the filters' identity.
        """
        if self._may_defer and self._gate.open():
            return True
        self.catch_up()  # rules back on the caller: earlier calls' checks run first, in order
        return False

    def catch_up(self) -> None:
        """Run every check still waiting for the sender, oldest first (before a check made now)."""
        if self._backlog:
            self._backlog.run()

    def check_later(
        self, call: Call, where: Location | None, resolver: Any, capture: Any = None
    ) -> DeferredRules:
        """The resolver that runs ``call``'s rules where its operation is completed (the sender).

        ``where`` is the call site captured at the call (:func:`.location.call_site`); ``resolver``
        the operation's own (``op._pending``), run first; ``capture`` the call's trace capture
        (its ``codes`` get the findings). Call it right before the operation is queued.
        """
        check = DeferredRules(resolver, self, call, where, capture, self._backlog)
        self._backlog.add(check)
        return check

    # -- output -----------------------------------------------------------------------------------
    def emit(self, findings: Sequence[Finding], stacklevel: int = 1) -> None:
        """Count ``findings``, then warn at the application's line or raise ("error" mode).

        The line is the first application frame at or above ``stacklevel`` (1 = the line calling
        ``emit``), passing over cioguard's wrappers, wrapt, the SDK and the standard library. When a
        cioguard caller (webhook actions, replay, worker) is on the way, the call is cioguard's own
        and nothing is emitted. In "off" mode nothing happens.
        """
        if not findings or self._off:
            return
        frame = user_frame(1, stacklevel)
        if not isinstance(frame, tuple):  # the tuple is INTERNAL: cioguard's own call
            self._out.emit_frame(findings, frame)

    def emit_at(self, findings: Sequence[Finding], where: Location | None) -> None:
        """Like :meth:`emit` with a location captured earlier (:func:`.location.locate` at the call)."""
        if findings and not self._off and where is not INTERNAL:
            self._out.emit(findings, where)

    def report(self, findings: Sequence[Finding]) -> None:
        """Findings off the caller's thread: count, log once per code, warn at the origin; never raise."""
        if findings and self.config.mode != "off":
            self._out.report(findings)

    def flush_counts(self) -> None:
        """Push counts of repeated findings to the recorder now (they otherwise go once a second)."""
        self._out.flush_counts()
