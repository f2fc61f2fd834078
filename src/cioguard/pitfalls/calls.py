"""The rules that look at one SDK call (a :class:`~cioguard.operations.model.Call`), with their state.

:class:`CallRules` is used through :meth:`cioguard.pitfalls.PitfallEngine.check_call`. The repeated,
well-formed ``track()`` is the hot path: the verdict on an event name is cached (bounded), the person
lookup is a couple of bit operations, and event data is walked once for timestamps and size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orjson import dumps as _dumps

from cioguard.operations.model import Call
from cioguard.pitfalls import bounces, schema
from cioguard.pitfalls.categories import Finding
from cioguard.pitfalls.limits import (
    MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_ATTRIBUTES,
    MAX_EVENT_DATA_BYTES,
    attributes_findings,
    data_size,
    data_size_finding,
    id_finding,
)
from cioguard.pitfalls.names import NameBook, name_verdict
from cioguard.pitfalls.people import PeopleRules, email_as_id_finding
from cioguard.pitfalls.timestamps import (
    StampKeys,
    argument_finding,
    attribute_finding,
    check_timestamps,
    timestamp_problem,
    value_problem,
)
from cioguard.pitfalls.transport import RateWatch
from cioguard.pitfalls.v2 import from_v2

_EMPTY: tuple[Finding, ...] = ()
_PERSON_METHODS = ("delete", "suppress", "unsuppress", "add_device", "delete_device")
_SEND_METHODS = ("send_email", "send_push", "send_sms", "send_whatsapp", "send_inbox_message", "send_in_app")
_MERGE_SIDES = (("primary_id_type", "primary_id"), ("secondary_id_type", "secondary_id"))


class CallRules:
    """Per-call rules CIO002 to CIO006, CIO008, CIO010 to CIO014 and the state they need."""

    def __init__(
        self,
        enabled: frozenset[str],
        *,
        fix_timestamps: bool,
        max_event_names: int,
        rate_limit: float,
        name_cache_size: int = 4096,
        max_batch_operations: int = 1000,
        measure_event_data: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.fix = fix_timestamps
        self.clock = clock
        self.people = PeopleRules()
        self.names = NameBook(max_event_names)
        #: Counts an occurrence that warns nowhere (set by the engine: its emitter's bulk count).
        self.count_only: Callable[[str], None] | None = None
        self.rate = RateWatch(rate_limit)
        self.max_batch_operations = max_batch_operations
        self._name_cache: dict[str, tuple[Finding, ...]] = {}
        self._page_cache: dict[str, tuple[Finding, ...]] = {}
        self._name_cache_size = name_cache_size
        self._email_warned = False
        self._stamps = StampKeys()
        self._plain_keys = self._stamps.plain  # data keys that are not timestamps (bounded)
        self._c002 = "CIO002" in enabled
        self._c013 = "CIO013" in enabled
        self._c014 = "CIO014" in enabled
        self._measure = self._c014 and measure_event_data
        self._c003 = "CIO003" in enabled
        # Ids recently seen identified: a dict hit is cheaper than the bitmap (bounded by PeopleRules).
        self._recent = self.people.recent
        self._on = {
            code: code in enabled
            for code in ("CIO002", "CIO003", "CIO004", "CIO005", "CIO008", "CIO011", "CIO013", "CIO014")
        }
        self.handlers: dict[str, Callable[[Call, bool], list[Finding]]] = {
            "track": self._event,
            "backfill": self._event,
            "pageview": self._event,
            "track_anonymous": self._event,
            "identify": self._identify,
            "merge_customers": self._merge,
            "batch": self._batch,
        }
        for method in _PERSON_METHODS:
            self.handlers[method] = self._person_only
        for method in _SEND_METHODS:
            self.handlers[method] = self._send

    def reset_after_fork(self) -> None:
        self.people.reset_after_fork()
        self.names.reset_after_fork()

    def check(self, call: Call, mode: str) -> tuple[list[Finding], Call]:
        handler = self.handlers.get(call.method)
        return self.finish(call, mode, handler(call, False) if handler is not None else [])

    def finish(self, call: Call, mode: str, findings: list[Finding]) -> tuple[list[Finding], Call]:
        """Add the call-rate rule (blocking mode) and apply ``fix_timestamps``."""
        if mode == "blocking" and self._on["CIO011"]:
            too_fast = self.rate.call(self.clock())
            if too_fast is not None:
                findings.append(too_fast)
        if self.fix and findings and call.method != "batch":
            return findings, self._fixed(call, findings)
        return findings, call

    # -- person ids -------------------------------------------------------------------------------
    def _id(self, method: str, cid: Any, email_typed: bool, out: list[Finding]) -> None:
        if type(cid) is str:
            if "@" in cid and not email_typed and self._on["CIO004"]:
                found = email_as_id_finding(method, cid)
                if found is not None:
                    out.append(found)
            if len(cid) <= 37:  # 37 chars * 4 bytes < 150: cannot exceed the id limit
                return
        if self._on["CIO014"]:
            found = id_finding(method, cid)
            if found is not None:
                out.append(found)

    def _person_only(self, call: Call, email_typed: bool) -> list[Finding]:
        out: list[Finding] = []
        self._id(call.method, call.customer_id, email_typed, out)
        data = call.data
        if self._c002 and type(data) is dict and data:  # add_device(..., last_used=ms)
            out.extend(check_timestamps(call.method, None, data)[0])
        return out

    def _merge(self, call: Call, email_typed: bool) -> list[Finding]:
        out: list[Finding] = []
        extra = call.extra or {}
        for type_key, id_key in _MERGE_SIDES:
            self._id("merge_customers", extra.get(id_key), extra.get(type_key) != "id", out)
        return out

    # -- events -----------------------------------------------------------------------------------
    def _event(self, call: Call, email_typed: bool) -> list[Finding]:
        return self.event(call.method, call.customer_id, call.name, call.data, call.timestamp, email_typed)

    def event(
        self, method: str, cid: Any, name: Any, data: Any, timestamp: Any, email_typed: bool = False
    ) -> list[Finding]:
        """The event rules over a call's fields (the sender's deferred checks make no ``Call``)."""
        # The hot path (a repeated, well-formed track()): keep it to dict/set lookups; anything
        # unusual falls through to the full rule functions.
        out: list[Finding] = []
        if method != "track_anonymous":
            kind = type(cid)
            # A short id without "@" (or a database int) cannot trip CIO004 or CIO014.
            if kind is str:
                if len(cid) > 37 or "@" in cid:
                    self._id(method, cid, email_typed, out)
            elif kind is not int:
                self._id(method, cid, email_typed, out)
            if cid not in self._recent and self._c003 and cid is not None and cid != "":
                found = self.people.on_event(method, cid if kind is str else str(cid))
                if found is not None:
                    out.append(found)
        if type(name) is str:
            verdict = (self._page_cache if method == "pageview" else self._name_cache).get(name)
            if verdict is None:
                verdict = self._new_name(name, method, out)
            if verdict:
                out.extend(verdict)
        # CIO002 in check_timestamps' order: the timestamp argument, then data keys in data order.
        stamped: list[Finding] | None = None
        if timestamp is not None and self._c002:
            problem = timestamp_problem(timestamp)
            if problem is not None:
                stamped = [argument_finding(method, problem[0])]
        if type(data) is dict and data:
            # Keys known not to be timestamps make the common case one C-level subset test; the
            # rest (usually the few "*_at" keys) is remembered per key sequence.
            if self._c002 and not self._plain_keys.issuperset(data):
                for key in self._stamps.of(data):
                    value = data[key]
                    if value is not None:
                        problem = value_problem(value)
                        if problem is not None:
                            found = attribute_finding(method, key, problem[0])
                            stamped = [found] if stamped is None else [*stamped, found]
            if self._measure:
                try:
                    size = len(_dumps(data))
                except TypeError:  # a type orjson cannot encode: the tolerant path
                    size = data_size(data)
                if size > MAX_EVENT_DATA_BYTES:
                    out.append(data_size_finding(method, size))
        if stamped is not None:
            out.extend(stamped)
        taxonomy = schema._current
        if taxonomy is not None and self._c013 and method != "pageview":
            out.extend(schema.event_findings(taxonomy, name, data))
        return out

    def _new_name(self, name: str, method: str, out: list[Finding]) -> tuple[Finding, ...]:
        """The verdict on a name not in the cache (first sight, or after the bounded cache was reset)."""
        page = method == "pageview"
        cache = self._page_cache if page else self._name_cache
        verdict = tuple(name_verdict(name, self.names, self.enabled, event=not page))
        if len(cache) >= self._name_cache_size:
            cache.clear()  # bounded: a later call recomputes (same verdict, cheaply)
        cache[name] = verdict
        # A name past the distinct-name bound is one more occurrence, unless its own verdict
        # already is CIO006 (an id-like name: one finding per call): warned once (where the bound
        # was crossed), counted for every new name after that.
        if not page and "CIO006" in self.enabled and all(f.code != "CIO006" for f in verdict):
            exploded = self.names.explosion_finding()
            if exploded is not None:
                out.append(exploded)
            elif self.names.exploded and self.count_only is not None:
                self.count_only("CIO006")
        return verdict

    # -- identify ---------------------------------------------------------------------------------
    def _identify(self, call: Call, email_typed: bool) -> list[Finding]:
        out: list[Finding] = []
        cid, attrs = call.customer_id, call.data
        if type(cid) is not str or len(cid) > 37 or "@" in cid:
            self._id("identify", cid, email_typed, out)
        if (
            (self._c003 or self._on["CIO005"])
            and cid is not None
            and cid != ""
            and cid not in self._recent  # recently identified: neither rule has anything to do
        ):
            check_email = self._on["CIO005"] and not email_typed
            found = self.people.on_identify(cid, attrs, check_email)
            if found is not None:
                out.append(found)
        if type(attrs) is dict and attrs:
            if self._c002 and not self._plain_keys.issuperset(attrs):
                out.extend(check_timestamps("identify", None, attrs)[0])
                self._stamps.remember(attrs)
            # Under 1000 bytes in all, no attribute name or value can be over its limit.
            if self._c014 and (len(attrs) > MAX_ATTRIBUTES or data_size(attrs) > MAX_ATTRIBUTE_VALUE_BYTES):
                out.extend(attributes_findings("identify", attrs))
        taxonomy = schema._current
        if taxonomy is not None and self._on["CIO013"]:
            out.extend(schema.identify_findings(taxonomy, attrs))
        return out

    # -- App API sends ----------------------------------------------------------------------------
    def _send(self, call: Call, email_typed: bool) -> list[Finding]:
        if not self._on["CIO008"]:
            return []
        out: list[Finding] = []
        if call.method == "send_email" and not self._email_warned:
            found = bounces.no_receiver_finding(call.method)
            if found is not None:
                self._email_warned = True  # the first email send only
                out.append(found)
        found = bounces.bounced_finding(call.method, bounces.request_identifiers(call.data))
        if found is not None:
            out.append(found)
        return out

    # -- v2 batch ---------------------------------------------------------------------------------
    def _batch(self, call: Call, email_typed: bool) -> list[Finding]:
        operations = (call.extra or {}).get("operations")
        if operations is None:
            operations = call.data
        if not isinstance(operations, list):
            return []
        out: list[Finding] = []
        for entry in operations[: self.max_batch_operations]:
            inner = from_v2(entry)
            if inner is not None:
                handler = self.handlers.get(inner[0].method)
                if handler is not None:
                    # The entry's rules name the call it stands for: say it is a batch() entry.
                    said = f" {inner[0].method}()"
                    for found in handler(inner[0], inner[1]):
                        text = found.message.replace(said, f" a batch() entry ({inner[0].method})", 1)
                        out.append(Finding(found.code, text, found.detail))
        return out

    def _fixed(self, call: Call, findings: list[Finding]) -> Call:
        if not any(f.code == "CIO002" for f in findings):
            return call
        _, timestamp, data = check_timestamps(call.method, call.timestamp, call.data, fix=True)
        if timestamp is call.timestamp and data is call.data:
            return call
        return Call(call.method, call.customer_id, call.name, data, timestamp, call.event_id, call.extra)
