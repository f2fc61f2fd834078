"""How findings reach people: a warning at the user's line, a count, a debug log (the engine's output).

Used by :class:`cioguard.pitfalls.PitfallEngine`; on its own::

    emitter = Emitter("warn", recorder)
    emitter.emit(findings, location)     # warn at location (None: at the origin), or raise in "error" mode
    emitter.report(findings)             # sender-side findings: count, log once per code, never raise
    emitter.flush_counts()               # push pending counts to the recorder now

Cheap when repeated: the warning text of a finding is constant, so once Python recorded a line's
warning as shown (its ``__warningregistry__``), a repeat there skips the warnings machinery while the
filters stay unchanged; an ``"error"`` or ``"always"`` filter still acts on every call. Counts of
findings already seen at a location are added in bulk (one atomic counter step; pushed to the
recorder at most once a second by a small daemon thread, and on :meth:`flush_counts`), so every
occurrence is counted in ``customerio_pitfalls_total`` without a metric update per call.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from cioguard.pitfalls.categories import Finding, PitfallWarning
from cioguard.pitfalls.location import Location, as_location
from cioguard.telemetry.recorder import Recorder, get_recorder
from cioguard.threads import daemon_thread

logger = logging.getLogger("cioguard.pitfalls")

#: How often pending counts reach the recorder at the latest (seconds).
FLUSH_SECONDS = 1.0
#: Added to a finding's message when the call had no application frame (a thread pool, an executor
#: helper such as asgiref's ``sync_to_async``): the line shown is where the client was built.
NO_LINE_NOTE = (
    " [No line of your application was on this call's stack (it ran in a worker thread, e.g."
    " pool.submit(client.track, ...) or sync_to_async(client.track)): shown at the line that built"
    " the client, or at the instrument() call.]"
)


class Emitter:
    """Warn, raise or count findings; thread-safe (counts under a lock only when pushed)."""

    def __init__(self, mode: str, recorder: Recorder | None = None, origin: Location | None = None) -> None:
        self.mode = mode
        self._error = mode == "error"
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self.origin = origin
        self._recorder = recorder
        #: (code, filename, lineno) already counted once: later occurrences are counted in bulk.
        self._seen: set[tuple[str, str, int]] = set()
        #: (code, code object, line) that Python recorded as shown under the current warning filters
        #: (identified by the list object, its length and its first entry; any change clears this)
        self._shown: set[tuple[str, int, int]] = set()
        self._filters: object = None
        self._filter_count = -1
        self._filter_first: object = None
        #: code -> itertools.count(): next() is one atomic C call, so threads never lose an increment.
        #: Every number a counter handed out is an occurrence, except the flush's own probes.
        self._counters: dict[str, Iterator[int]] = {}
        #: code -> numbers of its counter already accounted for (occurrences pushed + probes)
        self._accounted: dict[str, int] = {}
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._logged: set[str] = set()
        self._own_globals: dict[str, Any] = {"__name__": "cioguard"}
        #: where each API's client was first built (sender findings about its key point there)
        self.client_sites: dict[str, Location] = {}

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flusher = None
        self._counters, self._accounted = {}, {}

    @property
    def recorder(self) -> Recorder:
        return self._recorder if self._recorder is not None else get_recorder()

    # -- counting ---------------------------------------------------------------------------------
    def count_later(self, code: str) -> None:
        """One more occurrence of ``code``, pushed to the recorder in bulk (a repeat shown before,
        or an occurrence that warns nowhere, such as a name past CIO006's bound)."""
        counter = self._counters.get(code)
        if counter is None:
            counter = self._counters.setdefault(code, itertools.count())
        next(counter)
        if self._flusher is None:
            self._start_flusher()

    def _pending(self) -> dict[str, int]:
        """Occurrences counted since the last flush, per code (call under the lock)."""
        pending: dict[str, int] = {}
        for code, counter in list(self._counters.items()):
            probe = next(counter)  # = every number handed out before this one
            done = self._accounted.get(code, 0)
            self._accounted[code] = probe + 1  # this probe is accounted for too
            if probe > done:
                pending[code] = probe - done
        return pending

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None:
                return
            ref = weakref.ref(self)
            thread = daemon_thread(_flush_loop, "cioguard-pitfall-counts", (ref,))
            self._flusher = thread
        thread.start()

    def flush_counts(self) -> None:
        """Push every pending count to the recorder now (and look at the log level again)."""
        self._debug = logger.isEnabledFor(logging.DEBUG)
        if not self._counters:
            return
        with self._lock:
            pending = self._pending()
        if not pending:
            return
        recorder = self.recorder
        bulk = _takes_count(type(recorder))
        # Typed loosely on purpose: recorders without the count parameter take the loop below.
        add: Callable[[str, int], None] = getattr(recorder, "pitfall")  # noqa: B009
        for code, count in pending.items():
            if bulk:
                add(code, count)  # one update, not `count` of them
            else:  # a recorder without the count parameter: one increment each
                for _ in range(count):
                    recorder.pitfall(code)

    # -- output -----------------------------------------------------------------------------------
    def emit_frame(self, findings: Sequence[Finding], frame: FrameType | None) -> None:
        """:meth:`emit` at ``frame``'s current line; repeats already shown there cost a few lookups.

        A (code, line) whose warning Python already recorded as shown (its ``__warningregistry__``
        has the key) is skipped while the warning filters stay the same object with the same ends;
        any ``simplefilter``/``filterwarnings``/``catch_warnings`` changes that and warns again, so an
        "error" or "always" filter acts on every call.
        """
        if frame is None or self._error:
            self.emit(findings, None if frame is None else as_location(frame))
            return
        filters = warnings.filters
        shown = self._shown
        if (
            filters is not self._filters
            or len(filters) != self._filter_count
            or (filters and filters[0] is not self._filter_first)
        ):  # the filters changed: every line warns again once
            shown.clear()
            self._filters, self._filter_count = filters, len(filters)
            self._filter_first = filters[0] if filters else None
        code_object, lineno = frame.f_code, frame.f_lineno
        # A code object's own hash walks its fields; its id is one int (should a freed code object's
        # id be reused at the same line, at worst one warning is not shown again: it is still counted).
        site = id(code_object)
        debug = self._debug  # refreshed once a second and on every full warn
        for finding in findings:
            key = (finding.code, site, lineno)
            if key in shown:  # the hot path: a repeat at a line already shown
                counter = self._counters.get(finding.code)
                if counter is None:
                    counter = self._counters.setdefault(finding.code, itertools.count())
                next(counter)
                if self._flusher is None:
                    self._start_flusher()
                if debug:
                    logger.debug(
                        "%s at %s:%d: %s", finding.code, code_object.co_filename, lineno, finding.detail
                    )
                continue
            where = as_location(frame)
            self.emit((finding,), where)  # may raise (an "error" filter): nothing is cached then
            registry = where[3].get("__warningregistry__")
            if registry is not None and registry.get((finding.message, finding.category, lineno)):
                if len(shown) > 65536:  # bounded: a clear only means one more full warn
                    shown.clear()
                shown.add(key)

    def emit(self, findings: Sequence[Finding], where: Location | None) -> None:
        """Count, debug-log and warn at ``where`` (``None``: at the origin); raise in "error" mode."""
        if self._error:
            for finding in findings:
                self.recorder.pitfall(finding.code)
            raise findings[0].warning()
        elsewhere = where is None
        if where is None:
            where = self._no_line(findings)
        filename, lineno, module, module_globals = where
        registry = module_globals.get("__warningregistry__")
        if registry is None:
            registry = module_globals.setdefault("__warningregistry__", {})
        self._debug = debug = logger.isEnabledFor(logging.DEBUG)
        seen, counters = self._seen, self._counters
        for finding in findings:
            if (finding.code, filename, lineno) in seen:  # a repeat: count_later, inlined
                counter = counters.get(finding.code)
                if counter is None:
                    counter = counters.setdefault(finding.code, itertools.count())
                next(counter)
                if self._flusher is None:
                    self._start_flusher()
            else:
                self._count_now(finding, where)
            if debug:
                logger.debug("%s at %s:%d: %s", finding.code, filename, lineno, finding.detail or "-")
            # C fast path: a (text, category, line) already in the registry returns at once.
            message = finding.message + NO_LINE_NOTE if elsewhere else finding.message
            warnings.warn_explicit(message, finding.category, filename, lineno, module, registry)

    def _count_now(self, finding: Finding, where: Location) -> None:
        self._seen.add((finding.code, where[0], where[1]))
        if len(self._seen) > 65536:  # bounded: a clear only means one more immediate count
            self._seen.clear()
        self.recorder.pitfall(finding.code)

    def _no_line(self, findings: Sequence[Finding]) -> Location:
        """Where a finding with no application line warns (``pool.submit(client.track, …)``): the
        line that built the client of its API, else the line that called ``instrument()``."""
        api = "app" if findings[0].code == "CIO008" else "track"
        return self.client_sites.get(api) or self._fallback()

    def _fallback(self) -> Location:
        """The line that called ``instrument()`` (or a placeholder when there was none)."""
        if self.origin is not None:
            return self.origin
        return "<cioguard>", 0, "cioguard", self._own_globals

    def report(self, findings: Sequence[Finding]) -> None:
        """Findings without a user line: count, log once per code with the fix, warn at the origin.

        The warning (if filters show it at all) names the line that built the client of the API the
        finding is about (its ``detail`` starts with "App API" or "Track API"), else the line that
        called ``instrument()``; it never raises, whatever the mode or filters.
        """
        if not findings:
            return
        try:
            self.flush_counts()
            for finding in findings:
                api = "app" if finding.detail.startswith("App API") else "track"
                where = self.client_sites.get(api) or self._fallback()
                registry = where[3].setdefault("__warningregistry__", {})
                self.recorder.pitfall(finding.code)
                if finding.code not in self._logged:
                    self._logged.add(finding.code)
                    logger.warning("%s (%s)", finding.message, finding.detail or "no detail")
                elif logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%s again: %s", finding.code, finding.detail or "-")
                # An "error" filter must not kill the sender thread; the finding was logged.
                with contextlib.suppress(PitfallWarning):
                    warnings.warn_explicit(
                        finding.message, finding.category, where[0], where[1], where[2], registry
                    )
        except Exception:
            logger.debug("pitfall report failed", exc_info=True)


@functools.cache
def _takes_count(recorder_type: type) -> bool:
    """Whether ``recorder_type.pitfall`` accepts a ``count`` (decorators keep the signature)."""
    try:
        return "count" in inspect.signature(getattr(recorder_type, "pitfall")).parameters  # noqa: B009
    except (TypeError, ValueError):
        return False


def _flush_loop(ref: Callable[[], Emitter | None]) -> None:
    """Push pending counts once a second while the emitter lives (ends within a second after)."""
    wait = threading.Event().wait
    while True:
        wait(FLUSH_SECONDS)
        emitter = ref()
        if emitter is None:
            return
        try:
            emitter.flush_counts()
        except Exception:  # a recorder failure must not end counting
            logger.debug("pitfall count flush failed", exc_info=True)
        del emitter
