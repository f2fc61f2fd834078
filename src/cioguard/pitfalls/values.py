"""CIO014 for a value the SDK cannot serialise, found after the call by the sender's rules.

JSON has no infinity and the SDK's ``json`` knows no ``UUID``: the SDK raises for both, and
cioguard raises a ``TypeError`` naming the key path at the call whenever the rules run there
(``pitfalls="error"`` or ``"off"``, ``-W error``). In the default ``"warn"`` mode the caller does
not walk its data to tell a ``None`` from an ``inf`` (orjson writes both as ``null``) or a string
from a ``UUID`` (orjson writes its text): that walk would cost every call with a ``None`` about
2 µs. The sender's rules do it, and what they find is reported once per call site as CIO014; the
event was sent with ``null`` for the infinity (as the SDK does for ``nan``) and the UUID's text::

    finding = unsendable_finding(call.data, body)   # None, or CIO014 with the key path in .detail
"""

from __future__ import annotations

from typing import Any

from cioguard.operations.errors import SerializationError
from cioguard.operations.serialize import _UUID_TEXT, dumps, plain
from cioguard.pitfalls.categories import Finding

UNSENDABLE_MESSAGE = (
    "CIO014 event data held a value the customerio SDK cannot serialise (a float infinity or a "
    "UUID object; the SDK raises for it): it was sent as null / as the UUID's text. Send finite "
    "numbers and str(uuid)."
)
_PROBLEMS = ("float infinity", "UUID")


def needs_look(body: bytes) -> bool:
    """Whether the JSON ``body`` may hide an ``inf`` (a ``null``) or a ``UUID`` (its text)."""
    return body.find(b"null") >= 0 or (body.count(b"-") >= 4 and _UUID_TEXT.search(body) is not None)


def unsendable_finding(data: Any, body: bytes) -> Finding | None:
    """CIO014 when ``data`` (sent as ``body``) holds ``inf``/``-inf`` or a ``UUID`` at any depth."""
    if not isinstance(data, dict) or not needs_look(body) or plain(data):
        return None
    try:
        dumps(data, "data")
    except SerializationError as exc:
        text = str(exc)
        if any(problem in text for problem in _PROBLEMS):
            return Finding("CIO014", UNSENDABLE_MESSAGE, text.split(": ", 1)[0])
    return None
