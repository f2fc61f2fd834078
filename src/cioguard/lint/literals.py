"""Static CIO014 for ``cioguard lint``: literal values over Customer.io's documented limits.

Only literals can be judged before run time (the runtime rule sees every value)::

    over_limit(node)      # "event name is 120 bytes (limit 100)" for a 120-byte string literal

The limits are those of :mod:`cioguard.pitfalls.limits` (a test keeps them equal; the linter
imports nothing from the runtime packages).
"""

from __future__ import annotations

import ast

#: what -> limit in bytes
LIMITS = {"event name": 100, "customer id": 150, "attribute value": 1000}


def literal_text(node: ast.expr | None) -> str | None:
    """The value of a string literal (implicit concatenation included), else ``None``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def over_limit(node: ast.expr | None, what: str) -> str | None:
    """``"<what> is N bytes; Customer.io accepts at most L"`` for a literal over the limit."""
    text = literal_text(node)
    if text is None:
        return None
    size = len((text.strip() if what == "event name" else text).encode("utf-8", "surrogatepass"))
    limit = LIMITS[what]
    if size <= limit:
        return None
    return f"{what} is {size} bytes; Customer.io accepts at most {limit}"
