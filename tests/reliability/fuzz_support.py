"""Hypothesis strategies for hostile SDK arguments, and the plain-SDK oracle they are judged by.

:class:`SdkOracle` runs the *original* (unpatched) SDK method on a client whose ``send_request``
captures the payload instead of sending it, then encodes it the way ``requests``' ``json=`` does
(``allow_nan=False``). So for any arguments it tells what the plain SDK would have sent, or that
the plain SDK would have failed.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

from customerio import CustomerIO
from hypothesis import strategies as st

#: Exceptions cioguard may raise at the caller's line for bad input (documented validation errors).
VALIDATION_ERRORS: tuple[type[BaseException], ...]
try:
    from customerio import CustomerIOException

    VALIDATION_ERRORS = (TypeError, ValueError, CustomerIOException)
except ImportError:  # pragma: no cover
    VALIDATION_ERRORS = (TypeError, ValueError)

UTC = dt.timezone.utc

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
    st.binary(max_size=8),
    st.decimals(allow_nan=True, places=None),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    st.dates(),
    st.uuids(),
    st.sampled_from(["", "0", " ", "a@b.co", "cio_123", "é漢字🙂", "x" * 2_000]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "id", "email", "_timestamp", "created_at", "timestamp", "cio_relationships"]),
    st.integers(-5, 5),
    st.none(),
    st.booleans(),
)


#: Only what the SDK can send: JSON kinds, 64-bit ints, finite floats and NaN, datetimes.
sendable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=False),
    st.text(max_size=20),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)
sendable = st.recursive(
    sendable_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def nested(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Values of every kind, nested: dicts (non-string keys too), lists, tuples, sets."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(keys, children, max_size=4),
            st.frozensets(st.integers(0, 3) | st.text(max_size=3), max_size=3),
            st.sets(st.integers(0, 3), max_size=3),
        ),
        max_leaves=max_leaves,
    )


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"d": value}
    return value


attributes = st.dictionaries(st.text(min_size=1, max_size=12), nested(), max_size=4)
ids = st.one_of(
    st.none(),
    st.just(""),
    st.just(0),
    st.integers(-(2**70), 2**70),
    st.text(max_size=16),
    st.builds("{}@example.com".format, st.text(alphabet="ab.+_-", min_size=1, max_size=5)),
    st.sampled_from(["cio_abc", " ", "a/b?c#d", "x" * 200, "é漢字🙂", "%2F"]),
)


class _Capture(CustomerIO):  # type: ignore[misc]
    """A plain SDK client that records the request instead of sending it."""

    captured: tuple[str, str, str] | None = None

    def send_request(self, method: str, url: str, data: Any) -> Any:
        self.captured = (method, url, json.dumps(self._sanitize(data), allow_nan=False))
        return None


class SdkOracle:
    """What the unpatched SDK would send for a call: ``("ok", method, url, json)`` or ``("error", exc)``."""

    def __init__(self) -> None:
        self.client = _Capture(site_id="site-id", api_key="track-key")

    def run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        original = getattr(CustomerIO, method)
        original = getattr(original, "__wrapped__", original)  # bypass cioguard's wrapper
        self.client.captured = None
        try:
            original(self.client, *copy.deepcopy(args), **copy.deepcopy(kwargs))
        except Exception as exc:
            return ("error", exc)
        assert self.client.captured is not None
        return ("ok", *self.client.captured)


def same(a: Any, b: Any) -> bool:
    """Structural equality where NaN equals NaN (containers compare identity first anyway)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, Decimal) and isinstance(b, Decimal) and a.is_nan() and b.is_nan():
        return True
    try:
        return bool(a == b) or repr(a) == repr(b)
    except Exception:
        return repr(a) == repr(b)


def contains(value: Any, kind: type) -> bool:
    """Whether ``kind`` occurs anywhere in a nested value (dict keys included)."""
    if isinstance(value, kind):
        return True
    if isinstance(value, dict):
        return any(contains(k, kind) or contains(v, kind) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(contains(v, kind) for v in value)
    return False


EVENT_METHODS = ("track", "track_anonymous", "pageview", "backfill")


def api_rejects(method: str, args: tuple[Any, ...]) -> str | None:
    """Why Customer.io (and the emulator) would reject a call the SDK sends, for the known gaps in
    cioguard's caller-side validation (see test_known_validation_gaps), else ``None``."""
    if method in EVENT_METHODS and len(args) > 1:
        name = args[1]
        if not isinstance(name, str) or not name.strip():
            return "event name missing or not a string"
        if len(name.strip().encode()) > 100:
            return "event name over 100 bytes"
    if method == "add_device" and len(args) > 2 and args[2] not in ("ios", "android"):
        return "device platform not ios/android"
    if any(isinstance(a, str) and a == "cio_" for a in args):
        return "empty cio_id"
    return None
