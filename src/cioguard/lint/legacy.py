"""CIO015 for ``cioguard lint``: SDK calls in the customerio 1.x/2.x style that 3.x rejects.

customerio 1.x/2.x took event properties as keyword arguments; 3.x raises ``TypeError`` for
them, and an application that catches exceptions around tracking loses every event silently::

    legacy_problem(call_node, "track")
    # "track() gets keyword argument(s) plan; customerio 3.x takes track(customer_id, name, data={...})"

Checked: unknown keywords and ``**kwargs`` splats into ``track``/``track_anonymous``'s fixed
parameters, too many positional arguments, a missing required argument, and ``identify`` given a
positional dict or ``customer_id=`` instead of ``id``. Methods taking ``**kwargs`` themselves
(``pageview``, ``backfill``'s data) accept any keyword and are not checked for keywords.
"""

from __future__ import annotations

import ast

#: The 3.x spelling (the same table as :data:`cioguard.pitfalls.legacy.SPELLINGS`, kept equal by a test).
SPELLINGS: dict[str, str] = {
    "track": "track(customer_id, name, data={...}, timestamp=None)",
    "track_anonymous": "track_anonymous(anonymous_id, name, data={...}, timestamp=None)",
    "identify": "identify(id, **attributes)",
}

#: 3.x parameters (without self): (positional names in order, required count)
_FIXED: dict[str, tuple[tuple[str, ...], int]] = {
    "track": (("customer_id", "name", "data", "id", "timestamp"), 2),
    "track_anonymous": (("anonymous_id", "name", "data", "id", "timestamp"), 2),
}


def legacy_problem(node: ast.Call, method: str) -> str | None:
    """What about ``node`` (a call of SDK ``method``) customerio 3.x rejects, or ``None``."""
    if any(isinstance(a, ast.Starred) for a in node.args):
        return None  # *args: the count is unknown
    given = [kw.arg for kw in node.keywords if kw.arg is not None]
    splat = any(kw.arg is None for kw in node.keywords)
    if method in _FIXED:
        params, required = _FIXED[method]
        unknown = [name for name in given if name not in params]
        if unknown:
            return f"{method}() gets keyword argument(s) {', '.join(unknown)}"
        if splat:
            return f"{method}() gets **kwargs: event properties must go in data={{...}}"
        if len(node.args) > len(params):
            return f"{method}() gets {len(node.args)} positional arguments"
        bound = set(params[: len(node.args)]) | set(given)
        missing = [name for name in params[:required] if name not in bound]
        if missing:
            return f"{method}() is missing {', '.join(missing)}"
        return None
    if method == "identify":
        if len(node.args) > 1:
            return "identify() gets a positional argument after the id: attributes go as keywords"
        if not node.args and "id" not in given and not splat:
            old = "customer_id=" if "customer_id" in given else "no id"
            return f"identify() gets {old}; customerio 3.x requires the id as the first argument"
    return None


def legacy_message(node: ast.Call, method: str) -> str | None:
    """The CIO015 diagnostic text for ``node``, or ``None`` when the call is fine for 3.x."""
    problem = legacy_problem(node, method)
    if problem is None:
        return None
    return (
        f"{problem}; customerio 3.x raises TypeError for the 1.x/2.x spelling (events silently lost "
        f"where errors are caught): use {SPELLINGS[method]}"
    )
