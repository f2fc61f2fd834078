"""The sender's shortcuts over deferred checks never hide (or invent) a finding.

The sender runs the rules of every queued ``track()`` (:func:`cioguard.pitfalls.deferral.run_quick`)
with a few caches: no ``Call`` is made (``check_fields``), a string's timestamp verdict and a key
sequence's timestamp keys are remembered, and a call site's ``None`` paths let CIO014 skip the walk
(:class:`cioguard.pitfalls.values.NullHints`). Each test here changes only what the cache does not
key on (a value, a type at the same path, the same JSON bytes) and expects the finding anyway.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
import warnings
from typing import Any

import orjson
import pytest
from pitfall_helpers import CountingRecorder

from cioguard.operations.model import Call
from cioguard.operations.serialize import _default
from cioguard.pitfalls import PitfallConfig, PitfallEngine
from cioguard.pitfalls.deferral import Backlog, DeferredRules
from cioguard.pitfalls.location import Location, call_site
from cioguard.pitfalls.timestamps import check_timestamps, timestamp_problem, value_problem
from cioguard.pitfalls.values import NullHints, unsendable_finding


def _engine(**options: Any) -> PitfallEngine:
    return PitfallEngine(PitfallConfig(measure_event_data=False, **options), CountingRecorder())


def _body(data: Any) -> bytes:
    return orjson.dumps(data, _default)


class _Int(int):
    pass


class _Str(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        0, 1_700_000_000, 1_700_000_000_000, -1_700_000_000_000, 10**17, 99_999_999_999, 10**11,
        1.7e9, 1.7e12, math.inf, -math.inf, math.nan, True, False, None,
        "1700000000", "1700000000000", "2024-05-01", " 2024-05-01T10:20:30Z ", "soon", "",
        dt.datetime(2024, 5, 1), dt.date(2024, 5, 1), _Int(1_700_000_000_000), _Str("2024-05-01"),
        [1], {"a": 1},
    ],
)  # fmt: skip
def test_value_problem_is_timestamp_problem(value: object) -> None:
    assert value_problem(value) == timestamp_problem(value)
    assert value_problem(value) == timestamp_problem(value)  # a remembered string: the same answer


_CALLS = [
    ("track", "u1", "viewed", {"plan": "pro"}, None),  # never identified: CIO003
    ("track", "jane@example.com", "viewed", {}, None),  # CIO004
    ("track", "u2", "paid", {"created_at": 1_700_000_000}, None),
    ("track", "u2", "paid", {"created_at": 1_700_000_000_000}, None),  # same keys, ms: CIO002
    ("track", "u2", "paid", {"created_at": "2024-05-01", "x_at": 1.7e12}, 1_700_000_000_000),
    ("track", "u2", "paid", {"x_at": 1.7e12, "created_at": "2024-05-01"}, None),  # data order
    ("backfill", "u2", "paid", {"created_at": "1700000000000"}, 1_700_000_000),
    ("pageview", "u2", "https://example.com/a/1", None, None),
    ("track_anonymous", None, "signup", {"timestamp": 1_700_000_000_000}, None),
    ("track", "x" * 200, "viewed", None, None),  # CIO014 (id length)
    *[("track", "u3", f"order {n} paid", {}, None) for n in range(6)],  # names: CIO006
    ("identify", "u3", None, {"email": "u3@example.com", "created_at": 1_700_000_000_000}, None),
    ("track", "u3", "viewed", {"shipped_at": dt.datetime(2024, 5, 1)}, None),
]


def test_check_fields_gives_check_calls_findings_in_order() -> None:
    by_call, by_fields = _engine(max_event_names=3), _engine(max_event_names=3)
    for method, cid, name, data, stamp in _CALLS:
        expected, _ = by_call.check_call(Call(method, cid, name, data, stamp))
        got = by_fields.check_fields(method, cid, name, data, stamp, None)
        assert got == expected, (method, cid, name, data, stamp)
        # CIO002 as the uncached rule function finds it (every key, data order).
        assert [f for f in got if f.code == "CIO002"] == check_timestamps(method, stamp, data)[0]


def test_remembered_key_sequences_still_read_each_calls_values() -> None:
    engine = _engine()
    engine.check_call(Call("identify", "u1", data={"email": "u1@example.com"}))
    seen = []
    for value in (1_700_000_000, "2024-05-01T10:20:30Z", 1_700_000_000, "1700000000000", None, 1.7e12):
        findings = engine.check_fields("track", "u1", "paid", {"plan": "pro", "paid_at": value}, None, None)
        seen.append([f.detail for f in findings])
    assert seen == [
        [],
        ["attribute 'paid_at': ISO-8601 string"],
        [],
        ["attribute 'paid_at': milliseconds"],
        [],
        ["attribute 'paid_at': milliseconds"],
    ]


_SEQUENCES = [
    # The same JSON bytes, a None become an inf.
    [{"x": None}, {"x": math.inf}, {"x": None}, {"x": -math.inf}],
    # One more null than the site's None paths.
    [{"a": None, "b": 1.5}, {"a": None, "b": math.inf}],
    # A hint path whose first step is gone must not resolve through the outer dict.
    [{"a": {"b": None}, "b": None}, {"b": None, "c": math.inf}],
    # Lists: an index past the end, a list become a dict, a None moved.
    [{"l": [None, 1.0]}, {"l": [1.0, math.inf]}, {"l": {"0": None}, "m": math.inf}, {"l": [math.inf, None]}],
    # A string become a UUID object (its text), a string holding "null".
    [{"ref": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "c": None}, {"ref": uuid.UUID(int=7), "c": None}],
    [{"note": "null", "c": None}, {"note": "x", "c": math.inf}, {"note": "null", "c": math.inf}],
    # A None moved to another key (the hint is replaced), then an inf where it was.
    [{"a": None, "b": 1.0}, {"a": 1.0, "b": None}, {"a": math.inf, "b": None}],
    # Deeper nesting, the realistic shape.
    [
        {"c": {"r": None}, "items": [{"d": None}, {"d": 0.1}], "s": {"a": {"l2": None}}},
        {"c": {"r": None}, "items": [{"d": None}, {"d": math.inf}], "s": {"a": {"l2": None}}},
        {"c": {"r": None}, "items": [{"d": None}, {"d": 0.1}], "s": {"a": {"l2": math.inf}}},
    ],
]


@pytest.mark.parametrize("wrap", [False, True], ids=["data body", "entry body"])
@pytest.mark.parametrize("sequence", _SEQUENCES)
def test_null_hints_answer_as_the_full_rule_at_one_site(sequence: list[dict[str, Any]], wrap: bool) -> None:
    hints, site = NullHints(), object()
    found = []
    for data in sequence * 2:  # twice: every call after the first may use a hint
        body = _body({"id": "0" * 26, "name": "x", "attributes": data}) if wrap else _body(data)
        expected = unsendable_finding(data, body)
        assert hints.finding(data, body, site) == expected, data
        found.append(expected is not None)
    assert any(found)  # each sequence holds a value the rule reports


class _Capture:
    codes: tuple[str, ...] = ()


def _site() -> Location | None:
    return call_site(1)


def test_queued_tuples_report_what_deferred_calls_report() -> None:
    """Backlog.run over the fast path's tuples and over DeferredRules: the same codes per call."""
    counted = {"quick": CountingRecorder(), "slow": CountingRecorder()}
    quick = PitfallEngine(PitfallConfig(measure_event_data=False), counted["quick"])
    slow = PitfallEngine(PitfallConfig(measure_event_data=False), counted["slow"])
    where = _site()
    calls = [
        ("u1", {"coupon": None, "total": 1.0}),
        ("u1", {"coupon": None, "total": math.inf}),  # same site, same shape: CIO014
        ("u1", {"coupon": None, "placed_at": "2024-05-01"}),
        ("u1", {"coupon": None, "placed_at": 1_700_000_000_000}),
        *[("u1", {"coupon": None, "placed_at": "2024-05-01"})] * 5,  # repeats: counted in bulk
    ]
    got: dict[str, list[tuple[str, ...]]] = {"quick": [], "slow": []}
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for cid, data in calls:
            body = _body(data)
            capture_q, capture_s = _Capture(), _Capture()
            backlog: Backlog = quick.backlog
            backlog.waiting.append((quick, "track", cid, "paid", data, None, None, where, capture_q, body))
            backlog.run()
            check = slow.check_later(Call("track", cid, "paid", data), where, None, capture_s)
            check.body = body
            assert isinstance(check, DeferredRules)
            slow.backlog.run()
            got["quick"].append(capture_q.codes)
            got["slow"].append(capture_s.codes)
    assert got["quick"] == got["slow"]
    assert got["quick"] == [("CIO003",), ("CIO014",), ("CIO002",), ("CIO002",), *[("CIO002",)] * 5]
    quick.flush_counts()
    slow.flush_counts()
    assert sorted(counted["quick"].pitfalls) == sorted(counted["slow"].pitfalls)
    assert counted["quick"].pitfalls.count("CIO002") == 7  # every occurrence
    assert {w.filename for w in shown} == {__file__}  # at the user's line
