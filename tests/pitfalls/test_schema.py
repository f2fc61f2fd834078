"""CIO013: declare_events with mappings, TypedDicts, pydantic models and identify attributes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, TypedDict

import pydantic
import pytest
from pitfall_helpers import codes, identify
from typing_extensions import NotRequired

from cioguard.operations.model import Call
from cioguard.pitfalls import PitfallEngine, declare_events
from cioguard.pitfalls.schema import current, event_findings


class Checkout(TypedDict):
    order_id: str
    total: float
    coupon: NotRequired[str]


class PlanChanged(pydantic.BaseModel):
    to: Literal["free", "pro", "enterprise"]
    mrr: float
    note: str | None = None


def _messages(name: str, data: Any) -> list[str]:
    taxonomy = current()
    assert taxonomy is not None
    return [f"{f.message} [{f.detail}]" for f in event_findings(taxonomy, name, data)]


def test_mapping_typeddict_and_pydantic() -> None:
    declare_events(
        {
            "signed_up": {"method": str, "source": str | None},
            "checkout": Checkout,
            "plan_changed": PlanChanged,
        }
    )
    assert _messages("signed_up", {"method": "google"}) == []
    assert _messages("signed_up", {"method": "google", "source": None}) == []
    assert _messages("checkout", {"order_id": "o1", "total": 10}) == []  # int is fine for float
    assert _messages("checkout", {"order_id": "o1", "total": 9.5, "coupon": "X"}) == []
    assert _messages("plan_changed", {"to": "pro", "mrr": 49.0}) == []

    (missing,) = _messages("signed_up", {})
    assert "missing 'method'" in missing
    (extra,) = _messages("checkout", {"order_id": "o1", "total": 1.0, "user_email": "a@example.com"})
    assert "undeclared 'user_email'" in extra
    (wrong,) = _messages("checkout", {"order_id": 17, "total": 1.0})
    assert "field 'order_id' is not str" in wrong
    (literal,) = _messages("plan_changed", {"to": "gold", "mrr": 1.0})
    assert "'to'" in literal
    assert "gold" not in literal  # values are never printed
    (boolean,) = _messages("checkout", {"order_id": "o1", "total": True})
    assert "'total'" in boolean


def test_unknown_name() -> None:
    declare_events(["signed_up", "logged_in"])  # names only: data unchecked
    assert _messages("logged_in", {"anything": 1}) == []
    (unknown,) = _messages("loggedin", {})
    assert unknown.startswith("CIO013 event name is not in the declared taxonomy")
    assert "'loggedin'" in unknown


def test_allow_extra_and_no_data_events() -> None:
    declare_events({"app_opened": None, "viewed": {"id": int}}, allow_extra=True)
    assert _messages("app_opened", {"whatever": 1}) == []
    assert _messages("viewed", {"id": 1, "more": 2}) == []


def test_datetime_and_any_fields() -> None:
    declare_events({"trial_started": {"ends_at": datetime, "meta": Any, "tags": list[str]}})
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert _messages("trial_started", {"ends_at": now, "meta": {"x": 1}, "tags": ["a"]}) == []
    assert _messages("trial_started", {"ends_at": 1704067200, "meta": None, "tags": ()}) == []
    wrong = _messages("trial_started", {"ends_at": "tomorrow", "meta": 1, "tags": "a"})
    assert [m.split("'")[3] for m in wrong] == ["ends_at", "tags"]


def test_identify_attributes(engine: PitfallEngine) -> None:
    declare_events({}, identify={"email": str, "plan": Literal["free", "pro"], "seats": int | None})
    assert identify(engine, "u1", email="a@example.com", plan="pro", nickname="J") == []  # extras allowed
    assert identify(engine, "u2", email="a@example.com", plan="gold") == ["CIO013"]
    assert identify(engine, "u3", email="a@example.com") == ["CIO013"]  # plan missing
    assert identify(engine, "u1", seats=3, _update=True) == []  # partial update: nothing required


def test_engine_checks_taxonomy_declared_later(engine: PitfallEngine) -> None:
    identify(engine, "u1", email="a@example.com")
    call = Call("track", "u1", "signed_up", data={})
    assert codes(engine, call) == []  # no taxonomy: CIO013 is silent
    declare_events({"signed_up": {"method": str}})
    assert codes(engine, call) == ["CIO013"]


def test_bad_declarations() -> None:
    with pytest.raises(TypeError, match="TypedDict or a pydantic model"):
        declare_events({"x": 42})
    with pytest.raises(TypeError, match="not a single string"):
        declare_events("signed_up")
