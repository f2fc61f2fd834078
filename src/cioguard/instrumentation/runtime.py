"""The state one ``instrument()`` call sets up: engines, caches, and the two call paths.

A :class:`Runtime` owns the delivery engine, the pitfall engine, the recorder and the caller-span
tracing for as long as the SDK stays patched. Wrappers close over one runtime; ``uninstrument()``
drops the wrappers and shuts the runtime down, so no call can reach a stopped engine through a
stale global.

Two paths:

- the express wrappers of ``track``/``pageview``/``backfill`` in background mode
  (:func:`cioguard.instrumentation.express.make_express`): the same work with nothing else on the
  way; they hand anything unusual to ``enqueue`` before queueing.
- :meth:`Runtime.enqueue` (background mode): bind → pitfall rules, or in "warn" mode only the call
  site, the rules then running on the sender (:mod:`cioguard.pitfalls.deferral`) → the CIO011 queue
  check → trace capture → snapshot (``build`` with :class:`~cioguard.operations.deferred.Lanes`) →
  submit; returns ``None``. Costs microseconds; nothing touches the network. The lane, the email → id map,
  the event's ULID, the PRODUCER span and the metrics are done on the sender.
- :meth:`Runtime.fallback` / :meth:`Runtime.stats`: calls the wrappers sent through the blocking
  SDK after an internal error, counted per method (``cioguard.stats()["fallbacks"]``).
- :meth:`Runtime.call_through` (blocking mode, ``synchronous()``, App API sends): the SDK's own
  method runs, wrapped in a CLIENT span, timed for CIO007 and the request scope.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from cioguard import forks
from cioguard.config import Options
from cioguard.delivery.spool import commit_all
from cioguard.instrumentation.endpoint_cache import EndpointCache
from cioguard.instrumentation.express import EVENT_METHODS, QUEUE_CHECK_EVERY
from cioguard.instrumentation.freeze import FreezeWatch
from cioguard.instrumentation.queue_fill import QueueFill
from cioguard.instrumentation.senders import Sender, build_sender
from cioguard.instrumentation.spans import client_span, record_failure
from cioguard.instrumentation.stack import user_stacklevel
from cioguard.instrumentation.tracing import CallerTracing
from cioguard.operations.build import build
from cioguard.operations.calls import bind
from cioguard.operations.deferred import Lanes
from cioguard.operations.errors import OperationTooLarge, SerializationError
from cioguard.operations.model import Call, Endpoint
from cioguard.pitfalls import Finding, PitfallConfig, PitfallEngine
from cioguard.pitfalls.location import Location, call_site
from cioguard.pitfalls.values import warn_unsendable
from cioguard.scope import current_request
from cioguard.telemetry import Recorder, build_recorder, set_recorder

logger = logging.getLogger("cioguard")


#: Set while a call runs through the SDK on behalf of cioguard (``synchronous()`` or blocking mode),
#: so the ``send_request`` observer knows which SDK method the HTTP exchange belongs to.
current_sdk_call: ContextVar[str | None] = ContextVar("cioguard_sdk_call", default=None)
#: True inside ``cioguard.synchronous()``.
force_synchronous: ContextVar[bool] = ContextVar("cioguard_force_synchronous", default=False)

#: How long ``merge_customers`` waits for earlier operations to be delivered before it is queued.
_MERGE_BARRIER_SECONDS = 5.0


class Runtime:
    """Everything one instrumentation needs; see the module docstring."""

    def __init__(self, options: Options) -> None:
        self.options = options
        #: The options passed as keywords (the rest came from CIOGUARD_* variables or defaults).
        self.explicit: dict[str, Any] = {}
        self.blocking = options.mode == "blocking"
        self.freeze_watch = FreezeWatch()  # (before the sender can answer)
        #: The uWSGI master's pid while its calls go through the SDK until it forks (lifecycle,
        #: :meth:`held_until_fork`); None everywhere else (one attribute test per call).
        self.fork_origin: int | None = None
        self.recorder: Recorder = build_recorder(
            registry=options.registry, meter_provider=options.meter_provider, metrics=options.metrics
        )
        set_recorder(self.recorder)
        self.pitfalls_on = options.pitfalls != "off"
        self.pitfalls = PitfallEngine(
            PitfallConfig(
                mode=options.pitfalls,
                disabled=options.disabled_pitfalls,
                fix_timestamps=options.fix_timestamps,
                track_before_identify=options.track_before_identify,
                rate_limit=options.rate_limit,
                # In background mode build() measures event data anyway (OperationTooLarge below).
                measure_event_data=self.blocking,
            ),
            self.recorder,
        )
        self._defers = self.pitfalls.defers
        self._check_later = self.pitfalls.check_later
        self.tracing = CallerTracing(
            options.tracer_provider,
            producer_spans=options.producer_spans,
            capture_customer_id=options.capture_customer_id,
        )
        self.engine: Sender = build_sender(
            options, self.recorder, self.tracing.send_tracer(), self._on_send_response
        )
        endpoints = EndpointCache(options.track_url, options.api_url)
        #: ``track_endpoint_for(client)`` / ``app_endpoint_for(client)``: the client's Endpoint.
        self.track_endpoint_for = endpoints.track
        self.app_endpoint_for = endpoints.app
        #: Guards the fallback counts (rarely written).
        self._fallback_lock = threading.Lock()
        self._fallbacks: dict[str, int] = {}
        self._until_queue_check = QUEUE_CHECK_EVERY
        self._queue_fill = QueueFill(self.pitfalls, self.engine, options.max_queue_size)
        #: Completes operations on the sender: a person's lane whether addressed by id or by email
        #: (learnt from identify calls, in queue order), event ULIDs.
        self.lanes = Lanes()
        #: Set by :meth:`shutdown`; ``instrument()`` then builds a fresh runtime.
        self.stopped = False
        if self.pitfalls_on:  # checks the fast path queued run before the operations after them
            self.lanes.before = self.pitfalls.backlog.drain

    # -- background path --------------------------------------------------------------------------

    def enqueue(self, method: str, endpoint: Endpoint, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Validate, check and queue one call; raises only the documented validation errors.

        The caller's share only: bind and check the arguments, run the pitfall rules, snapshot the
        data (JSON bytes), capture the trace context, hand the operation over. Its lane (email →
        id), ULID and metrics are done on the sender (:mod:`cioguard.operations.deferred`).
        Invariant: anything that may raise into the caller (a validation error, a pitfall in
        ``pitfalls="error"`` mode, CIO011 included) runs before anything is queued.
        """
        started = time.perf_counter_ns()
        call = bind(method, args, kwargs)
        findings: list[Finding] = []
        later = False  # the rules run on the sender, at the call site captured here
        where: Location | None = None
        if self.pitfalls_on:
            if self._defers():  # "warn" mode, filters that neither raise, hide nor record
                later = True
                # From the wrapper's caller: enqueue is only ever called by a wrapper (both are
                # frames the walk passes over; skipping them saves making their frame objects).
                where = call_site(2)  # one shared tuple per call site
            else:
                findings, call = self.pitfalls.check_call(call, mode="background")
                if findings:
                    self.pitfalls.emit(findings)  # finds the user's line itself (cached per code object)
            self._until_queue_check -= 1
            if self._until_queue_check <= 0:
                self._check_queue()  # CIO011 may raise ("error" mode): before anything is queued
        # Trace capture (parent context + start time); the PRODUCER span is made on the sender.
        captured = self.tracing.capture(method, endpoint, call.name, call.customer_id)
        if captured is not None and findings:
            captured.codes = tuple(finding.code for finding in findings)
        try:
            operations = build(call, endpoint, span_context=captured, lanes=self.lanes, exact=not later)
        except OperationTooLarge as exc:
            if later:  # nothing will be queued: the rules run here
                self._check_now(call, where)
            self._too_large(method, exc, started)
            return None
        except SerializationError as exc:
            # An inf or a UUID in event data while the rules run here ("warn" mode, filters that
            # record): CIO014, as the sender's rules report it, and sent as the fast path sends it.
            if method not in EVENT_METHODS or not warn_unsendable(self.pitfalls, exc):
                raise
            operations = build(call, endpoint, span_context=captured, lanes=self.lanes, exact=False)
        if method == "merge_customers" and not getattr(self.engine, "orders_merges", False):
            # A merge is about two people whose earlier operations may sit in different lanes. The
            # local engine orders it on the sender (never blocking here); other senders (Redis)
            # get the earlier operations delivered first (bounded).
            self.engine.flush(_MERGE_BARRIER_SECONDS)
        submit = self.engine.submit
        # Whole microseconds, an int: below 257 µs CPython shares it, so no float per queued call.
        elapsed_us = (time.perf_counter_ns() - started) // 1000
        if captured is not None:
            captured.caller_seconds = elapsed_us / 1e6
        if later and operations:
            first = operations[0]
            check = self._check_later(call, where, first._pending, captured)
            if method in EVENT_METHODS:  # the snapshot left its values to the sender's rules
                check.body = first._body
            first._pending = check
        for operation in operations:
            operation._caller_us = elapsed_us
            if not submit(operation) and later:
                operation._complete()  # dropped at the door: its rules still run (and count)
        return None

    def _check_now(self, call: Call, where: Location | None) -> None:
        """A deferred call that will not be queued: its rules run here (after any still waiting)."""
        check = self.pitfalls.check_later(call, where, None)
        check.backlog.run(check)

    def _too_large(self, method: str, exc: OperationTooLarge, started_ns: int) -> None:
        """Count an oversize call as dropped, warn (CIO014) at the user's line, never send it."""
        self.recorder.call(method, "background", (time.perf_counter_ns() - started_ns) / 1e9)
        record_drop = getattr(self.engine, "record_drop", None)
        if callable(record_drop):  # counted in stats(), the metric and the drop log
            record_drop("oversize", 1, str(exc), method)
        else:
            self.recorder.dropped("oversize")
            logger.warning("cioguard: dropped an oversize %s call: %s", method, exc)
        if self.pitfalls_on and exc.what == "event data":
            findings = self.pitfalls.check_data_size(method, exc.size)
            if findings:
                self.pitfalls.emit(findings, stacklevel=user_stacklevel())

    def _check_queue(self) -> None:
        """CIO011 when the queue stays above 80 % full (checked every few hundred calls, not each)."""
        self._until_queue_check = QUEUE_CHECK_EVERY
        if not self.pitfalls_on:
            return
        self._queue_fill.check()

    # -- synchronous path -------------------------------------------------------------------------

    def call_through(
        self,
        method: str,
        endpoint: Endpoint,
        wrapped: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        bind_args: tuple[Any, ...] | None = None,
    ) -> Any:
        """Run the SDK's own method (blocking), with span, metrics and pitfall checks around it.

        ``args`` go to ``wrapped`` unchanged; ``bind_args`` (the arguments without the client, when
        the method was called through the class) are what the pitfall rules read.
        """
        findings: list[Finding] = []
        call: Call | None = None
        tracer = self.tracing.tracer()
        if self.pitfalls_on or tracer is not None:
            try:
                call = bind(method, args if bind_args is None else bind_args, kwargs)
            except Exception:  # the SDK itself raises the right error below
                call = None
        if call is not None and self.pitfalls_on:
            self.pitfalls.catch_up()  # background calls made before this one are checked first
            findings, _ = self.pitfalls.check_call(call, mode="blocking")
            if findings:
                self.pitfalls.emit(findings, stacklevel=user_stacklevel())
        with client_span(tracer, method, call, endpoint, findings, self.options.capture_customer_id) as span:
            token = current_sdk_call.set(method)
            started = time.perf_counter()
            try:
                result = wrapped(*args, **kwargs)
            except Exception as exc:
                # Never the SDK's text (it holds ids and payloads) unless capture_customer_id.
                record_failure(span, exc, self.options.capture_customer_id)
                raise
            finally:
                elapsed = time.perf_counter() - started
                current_sdk_call.reset(token)
                self._after_blocking(method, elapsed)
        return result

    def _after_blocking(self, method: str, elapsed: float) -> None:
        self.recorder.call(method, "blocking", elapsed)
        scope = current_request()
        if scope is not None:
            scope.blocked_seconds += elapsed
            scope.calls += 1
        if self.pitfalls_on:
            findings = self.pitfalls.check_blocking(method, elapsed)
            if findings:
                self.pitfalls.emit(findings, stacklevel=user_stacklevel())

    # -- observations -----------------------------------------------------------------------------

    def observe_client_built(self, kind: str, key: Any, site_id: Any = None) -> None:
        scope = current_request()
        if scope is not None:
            scope.clients_built += 1
        if self.pitfalls_on:
            findings = self.pitfalls.check_client(kind=kind, key=key, site_id=site_id)
            if findings:
                self.pitfalls.emit(findings, stacklevel=user_stacklevel())

    def held_until_fork(self) -> bool:
        """True in a uWSGI master before it forks its workers (calls go through the SDK: a sender
        thread running there when uWSGI forks could leave a worker hung). In a worker whose
        post-fork hook never ran (the app replaced it): start fresh here, once, and queue."""
        origin = self.fork_origin
        if origin is None:
            return False
        if os.getpid() == origin:
            return True
        forks.run_child_hooks()  # (once per process, whichever thread gets here first)
        self.fork_origin = None
        return False

    def forked(self) -> None:
        """A uWSGI worker started (its post-fork hook ran): calls are queued from now on."""
        self.fork_origin = None

    def observe_response(self, api: str, status_code: int) -> None:
        """A blocking SDK request finished with ``status_code`` (caller's thread)."""
        if self.pitfalls_on:
            findings = self.pitfalls.check_response(api=api, status_code=status_code)
            if findings:
                self.pitfalls.emit(findings, stacklevel=user_stacklevel())

    def _on_send_response(self, endpoint: Endpoint, status_code: int) -> None:
        """The background sender got ``status_code`` (sender thread: count and log, never raise)."""
        self.freeze_watch.answered()  # (once: AWS Lambda without a flushing handler)
        if self.pitfalls_on and status_code in (401, 403, 429):
            self.pitfalls.report(self.pitfalls.check_response(api=endpoint.api, status_code=status_code))

    # -- lifecycle --------------------------------------------------------------------------------

    def fallback(self, method: str) -> None:
        """A call went through the blocking SDK after an internal error: count it (never raises)."""
        with self._fallback_lock:
            self._fallbacks[method] = self._fallbacks.get(method, 0) + 1
        self.recorder.fallback(method)

    def stats(self) -> dict[str, Any]:
        """The sender's ``stats()`` plus ``fallbacks``: calls sent by the blocking SDK, per method."""
        result = dict(self.engine.stats())
        with self._fallback_lock:
            result["fallbacks"] = dict(self._fallbacks)
        return result

    def flush(self, timeout: float | None) -> bool:
        self.freeze_watch.flushed = True
        budget = 10.0 if timeout is None else timeout
        end = time.monotonic() + max(0.0, budget)
        done = self.engine.flush(timeout=budget)
        # The spool's deletions of what was delivered reach the disk before True is returned (a
        # caller may os._exit right after); it does not change the answer, which is about delivery.
        commit_all(end - time.monotonic())
        self._push_pitfall_counts()  # a scrape (or a multiprocess exit) right after sees every finding
        return done

    def _push_pitfall_counts(self) -> None:
        try:
            self.pitfalls.flush_counts()
        except Exception:  # counting never fails a flush
            logger.debug("pitfall count push failed", exc_info=True)

    def shutdown(self, timeout: float) -> None:
        self.stopped = True
        self.engine.shutdown(timeout=timeout)
        self._push_pitfall_counts()
