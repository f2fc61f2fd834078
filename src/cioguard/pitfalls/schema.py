"""CIO013: the declared event taxonomy, and the checks of events and identify attributes against it.

Declare the events your code may send once at startup (public as ``cioguard.declare_events``)::

    from typing import TypedDict
    import cioguard

    class SignedUp(TypedDict):
        method: str

    cioguard.declare_events(
        {
            "signed_up": SignedUp,                        # a TypedDict
            "plan_changed": {"from": str, "to": str, "mrr": float},   # a mapping of field → type
            "checkout_completed": CheckoutModel,          # a pydantic model (fields and annotations)
            "app_opened": None,                           # no data expected
        },
        identify={"email": str, "plan": str | None},    # optional: identify attributes
    )

Then ``track(cid, "signed_upp", ...)`` warns "CIO013 … not in the declared taxonomy", and missing,
extra (``allow_extra=False``, the default) or mistyped fields warn too. A field is optional when its
type admits ``None`` (or is ``NotRequired`` / not required in the TypedDict or model). Types are checked
shallowly: ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``list[...]``/``dict[...]`` (the
container only), unions, ``Literal``, ``datetime`` (the SDK converts it), ``Any``. Identify calls
accept attributes outside the declaration; ``_update=True`` identifies skip the missing-field check.
Values are never printed, only field names.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Union

from cioguard.pitfalls.categories import Finding
from cioguard.shapes import safe_name

Checker = Callable[[Any], bool]
_RESERVED = frozenset(
    {
        "id",
        "email",
        "anonymous_id",
        "created_at",
        "_timestamp",
        "_update",
        "cio_relationships",
        "cio_subscription_preferences",
        "unsubscribed",
    }
)


@dataclass(frozen=True)
class FieldSpec:
    required: bool
    check: Checker
    type_name: str
    #: Exact value types accepted without calling ``check`` (the fast path).
    exact: frozenset[type] = frozenset()


@dataclass(frozen=True)
class Taxonomy:
    events: Mapping[str, Mapping[str, FieldSpec] | None]  # None: any data accepted
    identify: Mapping[str, FieldSpec] | None
    allow_extra: bool


_current: Taxonomy | None = None
# typing.Required / NotRequired (3.11+) wrap TypedDict field types.
_WRAPPERS = tuple(w for w in (getattr(typing, "Required", None), getattr(typing, "NotRequired", None)) if w)


def _accepts_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None) or annotation is Any or annotation is object:
        return True
    origin = typing.get_origin(annotation)
    if origin is Union or isinstance(annotation, types.UnionType):
        return any(_accepts_none(arg) for arg in typing.get_args(annotation))
    return False


def _checker(annotation: Any) -> Checker:
    """A shallow isinstance-style check for a type annotation."""
    if annotation is Any or annotation is object:
        return lambda value: True
    if annotation is None or annotation is type(None):
        return lambda value: value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is not None and origin in _WRAPPERS:
        return _checker(args[0])
    if origin is Union or isinstance(annotation, types.UnionType):
        checks = [_checker(arg) for arg in args]
        return lambda value: any(check(value) for check in checks)
    if origin is typing.Literal:
        allowed = args
        return lambda value: value in allowed
    if origin is not None:
        annotation = origin  # list[str] → list, dict[str, int] → dict
    if annotation is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if annotation is datetime:
        return lambda value: isinstance(value, (datetime, int)) and not isinstance(value, bool)
    if isinstance(annotation, type):
        cls = annotation
        if cls in (list, tuple):
            return lambda value: isinstance(value, (list, tuple))
        return lambda value: isinstance(value, cls)
    return lambda value: True  # an annotation we cannot check (a string, a TypeVar): accept


def _exact(annotation: Any) -> frozenset[type]:
    origin = typing.get_origin(annotation)
    if origin is not None and origin in _WRAPPERS:
        return _exact(typing.get_args(annotation)[0])
    if origin is Union or isinstance(annotation, types.UnionType):
        return frozenset().union(*(_exact(arg) for arg in typing.get_args(annotation)))
    if annotation is float:
        return frozenset({float, int})
    if annotation is datetime:
        return frozenset({datetime, int})
    if annotation in (list, tuple) or origin in (list, tuple):
        return frozenset({list, tuple})
    if annotation in (int, str, bool, dict) or origin is dict:
        return frozenset({origin or annotation})
    return frozenset()


def _spec(required: bool, annotation: Any) -> FieldSpec:
    return FieldSpec(required, _checker(annotation), _type_name(annotation), _exact(annotation))


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _fields(spec: Any) -> dict[str, FieldSpec] | None:
    """Normalise a mapping, TypedDict or pydantic model into field specs (``None``: any data)."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return {str(name): _spec(not _accepts_none(ann), ann) for name, ann in spec.items()}
    if isinstance(spec, type) and hasattr(spec, "__required_keys__"):  # a TypedDict
        hints = typing.get_type_hints(spec, include_extras=True)
        required: frozenset[str] = spec.__required_keys__
        fields = {}
        for name, ann in hints.items():
            # Under ``from __future__ import annotations`` __required_keys__ misses NotRequired[...]
            # on Python < 3.13: read the wrapper from the evaluated hint instead.
            wrapper = getattr(typing.get_origin(ann), "_name", None)
            is_required = (
                name in required if wrapper not in ("Required", "NotRequired") else wrapper == "Required"
            )
            fields[name] = _spec(is_required and not _accepts_none(ann), ann)
        return fields
    model_fields = getattr(spec, "model_fields", None)  # pydantic v2 model (not imported here)
    if isinstance(spec, type) and isinstance(model_fields, Mapping):
        return {name: _spec(bool(info.is_required()), info.annotation) for name, info in model_fields.items()}
    raise TypeError(
        "declare_events: each event needs None, a mapping of field name → type, a TypedDict or a "
        f"pydantic model, not {type(spec).__name__}"
    )


def declare_events(
    events: Mapping[str, Any] | Iterable[str],
    *,
    identify: Any = None,
    allow_extra: bool = False,
) -> None:
    """Declare the event taxonomy CIO013 checks (replaces an earlier declaration).

    ``events`` maps each event name to its fields (a mapping of name → type, a ``TypedDict`` or a
    pydantic model; ``None`` for no data), or is a plain list of names whose data is not checked.
    ``identify`` optionally declares identify attributes the same way. Raises ``TypeError`` for a
    spec it cannot read.
    """
    global _current
    parsed: dict[str, Mapping[str, FieldSpec] | None]
    if isinstance(events, Mapping):
        parsed = {str(name): _fields(spec) for name, spec in events.items()}
    elif isinstance(events, str):
        raise TypeError("declare_events: pass a mapping or a list of names, not a single string")
    else:
        parsed = {str(name): None for name in events}
    identify_fields = None if identify is None else _fields(identify)
    _allowed.clear()
    _current = Taxonomy(parsed, identify_fields, allow_extra)


def clear_events() -> None:
    """Forget the declared taxonomy (CIO013 stops checking)."""
    global _current
    _current = None


def current() -> Taxonomy | None:
    return _current


_MISSING = object()
#: id(fields) → names allowed in the data (the fields live in the Taxonomy as long as it is current).
_allowed: dict[int, frozenset[str]] = {}


def _conforms(
    fields: Mapping[str, FieldSpec], values: Mapping[Any, Any], *, extra: bool, required: bool
) -> bool:
    for name, spec in fields.items():
        value = values.get(name, _MISSING)
        if value is None or value is _MISSING:
            if spec.required and (required or value is None):
                return False
        elif type(value) not in spec.exact and not spec.check(value):
            return False
    if extra:
        return True
    allowed = _allowed.get(id(fields))
    if allowed is None:
        allowed = _allowed[id(fields)] = frozenset(fields) | _RESERVED
    return values.keys() <= allowed


def _data_findings(
    event: str | None, fields: Mapping[str, FieldSpec], data: Any, *, extra: bool, required: bool
) -> list[Finding]:
    values: Mapping[Any, Any] = data if type(data) is dict or isinstance(data, Mapping) else {}
    if _conforms(fields, values, extra=extra, required=required):
        return []  # the common case: no message to build
    what = "identify() attributes" if event is None else "event data"
    about = "identify()" if event is None else f"event {safe_name(event)}"
    missing = [n for n, f in fields.items() if required and f.required and values.get(n) is None]
    extras = [] if extra else [k for k in values if k not in fields and k not in _RESERVED]
    wrong = [n for n, f in fields.items() if n in values and values[n] is not None and not f.check(values[n])]
    wrong += [n for n, f in fields.items() if n in values and values[n] is None and f.required]
    findings = []
    if missing:
        names = ", ".join(safe_name(n, 30) for n in missing[:5])
        findings.append(
            Finding(
                "CIO013",
                f"CIO013 {what} is missing declared field(s): "
                "segments and templates relying on them break. Send every declared field.",
                f"{about}: missing {names}",
            )
        )
    if extras:
        names = ", ".join(safe_name(n, 30) for n in extras[:5])
        findings.append(
            Finding(
                "CIO013",
                f"CIO013 {what} has field(s) not in the declared "
                "taxonomy: add them to declare_events(...) or drop them.",
                f"{about}: undeclared {names}",
            )
        )
    for name in wrong[:5]:
        findings.append(
            Finding(
                "CIO013",
                f"CIO013 {what} has a field not of its declared type: fix the value or the declaration.",
                f"{about}: field {safe_name(name, 30)} is not {fields[name].type_name}",
            )
        )
    return findings


def event_findings(taxonomy: Taxonomy, name: Any, data: Any) -> list[Finding]:
    """Unknown event names, and data not matching the declared fields."""
    if not isinstance(name, str):
        return []
    if name not in taxonomy.events:
        return [
            Finding(
                "CIO013",
                "CIO013 event name is not in the declared taxonomy: "
                "a typo or an undeclared event never matches campaign triggers. Fix the name or "
                "add it to cioguard.declare_events(...).",
                f"event name {safe_name(name)}",
            )
        ]
    fields = taxonomy.events[name]
    if fields is None:
        return []
    return _data_findings(name, fields, data, extra=taxonomy.allow_extra, required=True)


def identify_findings(taxonomy: Taxonomy, attributes: Any) -> list[Finding]:
    """Identify attributes against the declared ones (extra attributes are allowed)."""
    if taxonomy.identify is None:
        return []
    update = (type(attributes) is dict or isinstance(attributes, Mapping)) and attributes.get(
        "_update"
    ) is True
    return _data_findings(None, taxonomy.identify, attributes, extra=True, required=not update)
