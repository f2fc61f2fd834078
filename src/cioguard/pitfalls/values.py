"""CIO014 for a value the SDK cannot serialise, found after the call by the sender's rules.

JSON has no infinity and the SDK's ``json`` knows no ``UUID``: the SDK raises for both, and
cioguard raises a ``TypeError`` naming the key path at the call whenever the rules run there
(``pitfalls="error"`` or ``"off"``, ``-W error``). In the default ``"warn"`` mode the caller does
not walk its data to tell a ``None`` from an ``inf`` (orjson writes both as ``null``) or a string
from a ``UUID`` (orjson writes its text): that walk would cost every call with a ``None`` about
2 µs. The sender's rules do it, and what they find is reported once per call site as CIO014; the
event was sent with ``null`` for the infinity (as the SDK does for ``nan``) and the UUID's text::

    finding = unsendable_finding(call.data, body)   # None, or CIO014 with the key path in .detail

The sender asks :class:`NullHints` instead: a call site's data usually has its ``None`` values at
the same key paths on every call, so when the JSON holds exactly as many ``null`` as those paths
and each still holds ``None``, no ``null`` can be an ``inf`` and the walk is skipped::

    finding = hints.finding(call.data, body, where)   # the same answer, usually without the walk
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cioguard.operations.errors import SerializationError
from cioguard.operations.serialize import _INFINITIES, _LEAVES, _UUID_TEXT, dumps, plain
from cioguard.pitfalls.categories import Finding

if TYPE_CHECKING:
    from cioguard.pitfalls.engine import PitfallEngine

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


def warn_unsendable(engine: PitfallEngine, exc: SerializationError) -> bool:
    """For a caller whose rules run on its own thread in ``"warn"`` mode (filters that record
    warnings, e.g. ``pytest.warns``): report ``exc`` — an ``inf`` or a ``UUID`` in event data — as
    the sender's rules would, CIO014 at the user's line, and return True: the call is then sent
    as the fast path sends it (``null`` / the UUID's text). False when the caller must raise
    ``exc``: another problem, another mode, CIO014 disabled, or a filter that makes it an error
    (``-W error::cioguard.PitfallWarning``: the documented ``TypeError``)."""
    text = str(exc)
    if engine.config.mode != "warn" or "CIO014" not in engine.enabled:
        return False
    if not any(problem in text for problem in _PROBLEMS):
        return False
    try:
        engine.emit([Finding("CIO014", UNSENDABLE_MESSAGE, text.split(": ", 1)[0])], stacklevel=2)
    except Warning:  # the filters made it an error
        return False
    return True


#: A key path into event data: dict keys and list indexes, outermost first.
Path = tuple[Any, ...]
#: Call sites whose hint is kept, and the most ``None`` values a hint holds (bounds).
_SITES_MAX = 4096
_PATHS_MAX = 32
_MISSING = object()


def none_paths(data: Any, _leaves: frozenset[type] = _LEAVES) -> list[Path] | None:
    """The paths of ``data``'s ``None`` values, or ``None`` when ``data`` is not :func:`plain`."""
    paths: list[Path] = []
    stack: list[tuple[Path, Any]] = [((), data)]
    while stack:
        prefix, node = stack.pop()
        for step, item in node.items() if type(node) is dict else enumerate(node):
            kind = type(item)
            if item is None:
                paths.append((*prefix, step))
            elif kind in _leaves:
                continue
            elif kind is float:
                if item in _INFINITIES:
                    return None
            elif kind is dict or kind is list:
                stack.append(((*prefix, step), item))
            else:
                return None
    return paths


def _still_none(data: Any, paths: tuple[Path, ...], _missing: object = _MISSING) -> bool:
    """Whether every path leads, through exact dicts and lists, to a ``None`` in ``data``."""
    for path in paths:
        node = data
        for step in path:
            if type(node) is dict:
                node = node.get(step, _missing)
            elif type(node) is list and type(step) is int and 0 <= step < len(node):
                node = node[step]
            else:
                return False
        if node is not None:
            return False
    return True


class NullHints:
    """:func:`unsendable_finding` with a per-call-site hint: the paths of the last data's ``None``.

    Invariant behind a hit: every ``None`` and every ``inf`` in the data is its own ``null`` token
    in ``body``, so ``body`` holding as many ``null`` as the hint has paths, each still ``None``,
    leaves no room for an ``inf``; no UUID-shaped text leaves none for a ``UUID`` either. Anything
    else (a miss, UUID-shaped text, a hint that does not fit) takes the full rule. Only key paths
    are kept (attribute names and list indexes), never values.
    """

    __slots__ = ("_sites",)

    def __init__(self) -> None:
        #: id(call site) -> (the site, its data's None paths); the site is kept to check the id.
        self._sites: dict[int, tuple[object, tuple[Path, ...]]] = {}

    def finding(self, data: Any, body: bytes, site: object) -> Finding | None:
        if type(data) is not dict or (body.count(b"-") >= 4 and _UUID_TEXT.search(body) is not None):
            return unsendable_finding(data, body)
        nulls = body.count(b"null")
        if not nulls:
            return None  # nothing for the rule to look behind (needs_look is False)
        hint = self._sites.get(id(site))
        if hint is not None and hint[0] is site and len(hint[1]) == nulls and _still_none(data, hint[1]):
            return None
        paths = none_paths(data)
        if paths is None:  # not plain: the full rule decides (and names the place)
            return unsendable_finding(data, body)
        if site is not None and len(paths) == nulls and len(paths) <= _PATHS_MAX:
            if len(self._sites) >= _SITES_MAX:
                self._sites.clear()  # bounded: a miss only walks once more
            self._sites[id(site)] = (site, tuple(paths))
        return None  # plain: no inf, no UUID object
