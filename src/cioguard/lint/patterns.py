"""Expression predicates used by the lint checker: pure functions over ``ast`` nodes.

Each predicate takes the expression and a ``deref`` callable that follows a local variable to the
expression last assigned to it (simple intra-function data flow), and a ``qualname`` callable that
resolves imports (``t.time`` -> ``time.time`` after ``import time as t``)::

    ms_timestamp(node, qualname, deref)   # "time.time() * 1000" or None
    email_like(node, deref)               # True for "a@b.io", email, user.email, row["email"]
    dynamic_name(node, deref)             # ("f-string", [interpolated parts]) or None
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from cioguard.shapes import ISO_DATE

QualName = Callable[[ast.expr], "str | None"]
Deref = Callable[[ast.expr], "ast.expr | None"]

EMAIL_RE = re.compile(r"[^@\s{}]+@[^@\s{}]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# user_email, email, email_address, contact_email_addr ...
EMAIL_NAME_RE = re.compile(r"(?:^|_)e_?mail(?:_?addr(?:ess)?)?$", re.IGNORECASE)
# an email's hash, not the address: hashed_email, sha256_email, md5_email (not digest_email)
_DIGEST_NAME_RE = re.compile(r"(?:^|_)(?:hash(?:ed)?|sha\d*|md5|encrypted|masked)_", re.IGNORECASE)
# a name that holds personal data: email, user_email, phone_number, mobile, msisdn, card_number ...
PII_NAME_RE = re.compile(
    r"(?:^|_)(?:e_?mail(?:_?addr(?:ess)?)?|phone(?:_?(?:number|no|num))?|mobile(?:_?(?:number|no))?"
    r"|msisdn|telephone|ssn|card_?(?:number|num|no)|credit_?card(?:_?number)?|cc_?(?:number|num))$"
)
TIMESTAMP_KEY_RE = re.compile(r"^(?:_?timestamp|.+_at|last_used)$")

_SECONDS_CALLS = frozenset({"time.time", "time.mktime", "calendar.timegm"})
_WRAPPERS = frozenset({"int", "round", "float", "math.floor", "math.ceil", "math.trunc"})
_MAX_DEPTH = 4


def _const(node: ast.expr, values: tuple[float, ...]) -> bool:
    if (  # 10**6 as written for a divisor
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Pow)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.right, ast.Constant)
        and node.left.value == 10
        and type(node.right.value) is int
        and 0 <= node.right.value <= 9
    ):
        return 10**node.right.value in values
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value in values


def iso_timestamp(node: ast.expr) -> str | None:
    """The source text of an ISO-8601 string expression (a literal, ``.isoformat()``), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ast.unparse(node) if ISO_DATE.fullmatch(node.value.strip()) else None  # (the runtime rule's)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "isoformat":
        return ast.unparse(node)
    return None


def _unwrap(node: ast.expr, qualname: QualName) -> ast.expr:
    """int(x), round(x), math.floor(x) ... -> x."""
    while isinstance(node, ast.Call) and len(node.args) >= 1 and qualname(node.func) in _WRAPPERS:
        node = node.args[0]
    return node


def _seconds_source(node: ast.expr, qualname: QualName, deref: Deref, depth: int) -> bool:
    node = _unwrap(node, qualname)
    if isinstance(node, ast.Name) and depth < _MAX_DEPTH:
        target = deref(node)
        return target is not None and _seconds_source(target, qualname, deref, depth + 1)
    if not isinstance(node, ast.Call):
        return False
    if qualname(node.func) in _SECONDS_CALLS:
        return True
    # datetime.now().timestamp(), dt.timestamp(), arrow's .timestamp() ...
    return isinstance(node.func, ast.Attribute) and node.func.attr == "timestamp" and not node.args


def ms_timestamp(node: ast.expr, qualname: QualName, deref: Deref, depth: int = 0) -> str | None:
    """Return the source text of a millisecond-timestamp expression, or None."""
    inner = _unwrap(node, qualname)
    if isinstance(inner, ast.Name) and depth < _MAX_DEPTH:
        target = deref(inner)
        return None if target is None else ms_timestamp(target, qualname, deref, depth + 1)
    if isinstance(inner, ast.BinOp):
        if isinstance(inner.op, ast.Mult):
            for a, b in ((inner.left, inner.right), (inner.right, inner.left)):
                if _const(b, (1000, 1e3)) and _seconds_source(a, qualname, deref, depth):
                    return ast.unparse(node)
        if isinstance(inner.op, (ast.FloorDiv, ast.Div)) and _const(inner.right, (1_000_000, 1e6)):
            left = _unwrap(inner.left, qualname)
            if isinstance(left, ast.Call) and qualname(left.func) == "time.time_ns":
                return ast.unparse(node)
    if isinstance(inner, ast.Constant) and type(inner.value) is int and 10**11 <= inner.value < 10**14:
        return ast.unparse(node)  # 1700000000123 is a millisecond epoch (year 2023)
    return None


def _name_of(node: ast.expr) -> str | None:
    """The identifying name of a variable-ish expression: x, obj.x, row["x"], d.get("x")."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def email_like(node: ast.expr, deref: Deref, depth: int = 0) -> bool:
    """A literal email address or a value named like an email (``email``, ``user.email``, ``*_email``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and EMAIL_RE.fullmatch(node.value) is not None
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and "@" in str(v.value) for v in node.values)
    # email.lower(), user.email.strip()
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and not node.args
        and node.func.attr in {"lower", "strip", "casefold", "upper"}
    ):
        return email_like(node.func.value, deref, depth)
    name = _name_of(node)
    if name is not None and EMAIL_NAME_RE.search(name) and not _DIGEST_NAME_RE.search(name):
        return True
    if isinstance(node, ast.Name) and depth < _MAX_DEPTH:
        target = deref(node)
        return target is not None and email_like(target, deref, depth + 1)
    return False


def pii_like(node: ast.expr) -> str | None:
    """The name or literal that makes an interpolated part personal data, or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        match = EMAIL_RE.search(node.value) or PHONE_RE.search(node.value)
        return match.group(0) if match else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args:
        return pii_like(node.func.value)  # email.lower()
    name = _name_of(node)
    if name is not None and PII_NAME_RE.search(name.lower()):
        return name
    return None


def _is_str(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _concat_leaves(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concat_leaves(node.left) + _concat_leaves(node.right)
    return [node]


def literal_choices(node: ast.expr | None) -> bool:
    """A literal tuple, list or set of strings (``("active", "canceled")``)."""
    return (
        isinstance(node, (ast.Tuple, ast.List, ast.Set))
        and bool(node.elts)
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    )


def dynamic_name(node: ast.expr, deref: Deref, depth: int = 0) -> tuple[str, list[ast.expr]] | None:
    """How an event name is built at run time, and the interpolated parts; None for a fixed name
    (an f-string over a loop variable of literal choices has a few known values: fixed)."""
    if isinstance(node, ast.JoinedStr):
        parts: list[ast.expr] = [
            v.value
            for v in node.values
            if isinstance(v, ast.FormattedValue)
            and not (isinstance(v.value, ast.Name) and literal_choices(deref(v.value)))
        ]
        literal: list[ast.expr] = [v for v in node.values if isinstance(v, ast.Constant)]
        return ("f-string", parts + literal) if parts else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
        right = node.right
        parts = list(right.elts) if isinstance(right, ast.Tuple) else [right]
        return "%-formatting", [*parts, node.left]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        leaves = _concat_leaves(node)
        variable = [leaf for leaf in leaves if not isinstance(leaf, ast.Constant)]
        if variable and (any(_is_str(leaf) for leaf in leaves) or len(variable) == len(leaves)):
            return "concatenation", leaves
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if node.func.attr == "format" and _is_str(owner):
            return ".format()", [*node.args, *(k.value for k in node.keywords), owner]
        if node.func.attr == "join" and _is_str(owner) and node.args:
            arg = node.args[0]
            elts = list(arg.elts) if isinstance(arg, (ast.List, ast.Tuple)) else [arg]
            if any(not isinstance(e, ast.Constant) for e in elts):
                return "str.join()", elts
    if isinstance(node, ast.Name) and depth < _MAX_DEPTH:
        target = deref(node)
        return None if target is None else dynamic_name(target, deref, depth + 1)
    return None


def to_snake(name: str) -> str:
    """``"UserSignedUp"``/``"user-signed-up"``/``"User signed up"`` -> ``"user_signed_up"``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_") or "event_name"


def literal_key_kind(node: ast.expr) -> str | None:
    """A hard-coded key's shape (unofficial, from secret scanners): Track keys have 20 characters,
    App API keys 32 hex characters or a ``sa_live_`` service-account prefix."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    value = node.value
    if re.fullmatch(r"[0-9a-fA-F]{32}", value) or value.startswith("sa_live_"):
        return "app"
    return "track" if re.fullmatch(r"[0-9a-zA-Z]{20}", value) else None


def key_label(node: ast.expr, deref: Deref, depth: int = 0) -> str | None:
    """The name a credential comes from: a variable, an attribute, or an environment variable name.

    Covers ``os.environ["X"]``, ``os.getenv("X")``, ``os.environ.get("X")``, ``settings.X`` and a
    local assigned one of those.
    """
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in {"getenv", "get"}) or (
            isinstance(func, ast.Name) and func.id == "getenv"
        ):
            return str(node.args[0].value)
    name = _name_of(node)
    if isinstance(node, ast.Name) and depth < _MAX_DEPTH:
        target = deref(node)
        inner = None if target is None else key_label(target, deref, depth + 1)
        if inner is not None:
            return f"{name} = {inner}"
    return name


SMALL = 100  # a literal or range() of at most this many items is a bounded loop
_PASS_THROUGH = frozenset({"enumerate", "sorted", "reversed", "list", "tuple", "set"})


def bounded_iterable(node: ast.expr, qualname: QualName, deref: Deref, depth: int = 0) -> bool:
    """A loop over this has a small constant size: a short literal, ``range(<= 100)``, or a wrapper of one."""
    target = deref(node) if depth < _MAX_DEPTH else None
    if target is not None:
        return bounded_iterable(target, qualname, deref, depth + 1)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return len(node.elts) <= SMALL and not any(isinstance(e, ast.Starred) for e in node.elts)
    if isinstance(node, ast.Dict):
        return len(node.keys) <= SMALL and None not in node.keys
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):  # emails[:3], rows[0:50]
        piece = node.slice
        ends = [e.value if isinstance(e, ast.Constant) else e for e in (piece.lower, piece.upper, piece.step)]
        if piece.step is None and isinstance(ends[1], int) and type(ends[1]) is int and 0 <= ends[1] <= SMALL:
            return ends[0] is None or (type(ends[0]) is int and ends[0] >= 0)
        return False
    if not isinstance(node, ast.Call):
        return False
    name = qualname(node.func)
    if name == "itertools.islice" and len(node.args) == 2:  # islice(rows, 10)
        stop = node.args[1]
        return isinstance(stop, ast.Constant) and type(stop.value) is int and 0 <= stop.value <= SMALL
    if name == "range":
        bounds = [a.value for a in node.args if isinstance(a, ast.Constant) and type(a.value) is int]
        if not node.args or len(bounds) != len(node.args) or len(bounds) > 3 or 0 in bounds[2:]:
            return False
        return len(range(*bounds)) <= SMALL
    if name in _PASS_THROUGH:
        return bool(node.args) and bounded_iterable(node.args[0], qualname, deref, depth + 1)
    if name == "zip":
        return any(bounded_iterable(a, qualname, deref, depth + 1) for a in node.args)
    if isinstance(node.func, ast.Attribute) and node.func.attr in {"items", "keys", "values"}:
        return bounded_iterable(node.func.value, qualname, deref, depth + 1)
    return False
