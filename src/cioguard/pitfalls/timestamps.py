"""CIO002: timestamps in milliseconds (or ISO-8601 strings) where Customer.io needs Unix seconds.

``timestamp_problem(value)`` classifies one value; ``is_timestamp_key(key)`` tells which attribute
names hold timestamps (``timestamp``, ``_timestamp``, ``created_at``, ``*_at``); ``check_timestamps``
checks a ``timestamp=`` argument and the top level of a data/attributes dict and, with ``fix=True``,
returns corrected copies (the caller's dict is never mutated). Only numeric scale errors are fixed:
an ISO string is reported, not rewritten.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable
from typing import Any

from cioguard.pitfalls.categories import Finding
from cioguard.shapes import ISO_DATE, safe_name

#: Seconds reach 1e11 in the year 5138; milliseconds pass it in 1973.
MS_THRESHOLD = 1e11
_SCALES = (
    (1e17, 1_000_000_000, "nanoseconds"),
    (1e14, 1_000_000, "microseconds"),
    (MS_THRESHOLD, 1000, "milliseconds"),
)
#: Timestamp keys by name (besides "*_at"); last_used: a device's last use (add_device).
_NAMED = frozenset({"timestamp", "_timestamp", "created_at", "last_used"})
#: Exact types ``timestamp_problem`` always answers ``None`` for (none is an int, float or str).
_NEVER: frozenset[type] = frozenset({type(None), bool, _dt.datetime, _dt.date, dict, list})
#: Verdicts on short strings (the same ISO date under the same key on every call); bounded.
_TEXT_VERDICTS: dict[str, tuple[str, int] | None] = {}
_TEXT_VERDICTS_MAX = 1024
_TEXT_CACHED_LEN = 64
#: Data keys remembered as "not a timestamp", and key sets remembered (bounded: beyond it, checked again).
_PLAIN_KEYS_MAX = 4096
_KEY_SETS_MAX = 1024
_KEY_SET_CACHED_LEN = 64


def is_timestamp_key(key: object) -> bool:
    return isinstance(key, str) and (key in _NAMED or key.endswith("_at"))


class StampKeys:
    """Which top-level keys of event data may hold a timestamp (``is_timestamp_key``), remembered.

    ``plain``: keys known not to be timestamp keys (a data dict whose keys are all in it has none);
    :meth:`of` remembers the answer per key sequence. Both bounded; a miss only recomputes.
    """

    __slots__ = ("_by_keys", "plain")

    def __init__(self) -> None:
        self.plain: set[Any] = set()
        self._by_keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def of(self, data: dict[Any, Any]) -> tuple[Any, ...]:
        """``data``'s timestamp keys, in ``data``'s order."""
        keys = tuple(data)
        known = self._by_keys.get(keys)
        if known is not None:
            return known
        stamps = tuple(key for key in keys if is_timestamp_key(key))
        self.remember(data)
        if len(keys) <= _KEY_SET_CACHED_LEN:
            if len(self._by_keys) >= _KEY_SETS_MAX:
                self._by_keys.clear()
            self._by_keys[keys] = stamps
        return stamps

    def remember(self, data: dict[Any, Any]) -> None:
        """Add ``data``'s keys that are not timestamp keys to :attr:`plain` (bounded)."""
        plain = self.plain
        for key in data.keys() - plain:
            if len(plain) < _PLAIN_KEYS_MAX and not is_timestamp_key(key):
                plain.add(key)


def timestamp_problem(value: object) -> tuple[str, int] | None:
    """``(unit, divisor)`` when ``value`` is a too-large number, ``("ISO-8601 string", 0)`` for ISO
    text, ``None`` when it looks like Unix seconds (or is not a timestamp at all)."""
    if isinstance(value, bool):
        return None
    number: float
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        if value.isdigit():
            number = int(value)
        elif ISO_DATE.fullmatch(value.strip()) is not None:
            return ("ISO-8601 string", 0)
        else:
            return None
    else:
        return None
    for threshold, divisor, unit in _SCALES:
        if abs(number) >= threshold:
            return (unit, divisor)
    return None


def value_problem(value: object) -> tuple[str, int] | None:
    """:func:`timestamp_problem`, cheaper for the common types (same answer for every value)."""
    if type(value) is str:
        try:  # (a verdict may be None, and another thread may clear the cache: no .get, no "in")
            return _TEXT_VERDICTS[value]
        except KeyError:
            pass  # a miss: classify below
        verdict = timestamp_problem(value)
        if len(value) <= _TEXT_CACHED_LEN:
            if len(_TEXT_VERDICTS) >= _TEXT_VERDICTS_MAX:
                _TEXT_VERDICTS.clear()  # bounded: a later call classifies again (same verdict)
            _TEXT_VERDICTS[value] = verdict
        return verdict
    if type(value) is int or type(value) is float:
        if -MS_THRESHOLD < value < MS_THRESHOLD or value != value:  # under every threshold, or nan
            return None
        return timestamp_problem(value)
    if type(value) in _NEVER:
        return None
    return timestamp_problem(value)


def _message(method: str, where: str, unit: str) -> Finding:
    if unit == "ISO-8601 string":
        return Finding(
            "CIO002",
            f"CIO002 a timestamp in {method}() is an ISO-8601 string; Customer.io needs Unix seconds, "
            "otherwise dates do not compare in segments. Pass an int (int(dt.timestamp())) or a datetime.",
            f"{where}: ISO-8601 string",
        )
    return Finding(
        "CIO002",
        f"CIO002 a timestamp in {method}() is not in Unix seconds (milliseconds or finer): Customer.io "
        "reads seconds, so the date lands thousands of years ahead and segments silently break. Pass "
        "int(time.time()) or a datetime (or set fix_timestamps=True).",
        f"{where}: {unit}",
    )


@functools.lru_cache(maxsize=1024)
def _attribute_message(method: str, key: Any, unit: str) -> Finding:
    # Findings are immutable: a repeated one (the same ISO date key on every call) is made once.
    return _message(method, f"attribute {safe_name(key)}", unit)


def argument_finding(method: str, unit: str) -> Finding:
    """CIO002 for the ``timestamp=`` argument (``unit`` from :func:`timestamp_problem`)."""
    return _message(method, "the timestamp argument", unit)


#: CIO002 for the data key ``key`` (made once per method, key and unit; no wrapper on the hot path).
attribute_finding = _attribute_message


def _fixed(value: Any, divisor: int) -> Any:
    number = int(value) if isinstance(value, str) else value
    return int(number // divisor)


def check_timestamps(
    method: str, timestamp: Any, data: Any, *, fix: bool = False, keys: list[Any] | None = None
) -> tuple[list[Finding], Any, Any]:
    """Findings for ``timestamp`` and ``data``'s top level, plus (possibly fixed) timestamp and data.

    ``keys``: when the caller already knows which of ``data``'s keys may hold a timestamp (the
    others are known not to), only those are examined (in ``data``'s order).
    """
    findings: list[Finding] = []
    if timestamp is not None:
        problem = timestamp_problem(timestamp)
        if problem is not None:
            findings.append(_message(method, "the timestamp argument", problem[0]))
            if fix and problem[1]:
                timestamp = _fixed(timestamp, problem[1])
    if isinstance(data, dict):
        fixed: dict[Any, Any] | None = None
        items: Iterable[tuple[Any, Any]]
        if keys is None:
            items = data.items()
        elif len(keys) == 1:
            items = [(keys[0], data[keys[0]])]
        else:
            wanted = set(keys)
            items = [(key, value) for key, value in data.items() if key in wanted]
        for key, value in items:
            if value is None or not is_timestamp_key(key):
                continue
            problem = timestamp_problem(value)
            if problem is None:
                continue
            findings.append(_attribute_message(method, key, problem[0]))
            if fix and problem[1]:
                if fixed is None:
                    fixed = dict(data)  # a copy: the caller's dict is never mutated
                fixed[key] = _fixed(value, problem[1])
        if fixed is not None:
            data = fixed
    return findings, timestamp, data
