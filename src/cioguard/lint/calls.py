"""Per-call rules of ``cioguard lint``: SDK constructors (CIO001, CIO009) and SDK methods.

Called by :class:`cioguard.lint.checker.Checker` for every ``ast.Call`` it visits::

    check_call(checker, call_node)

A method call counts as a Customer.io call when its receiver resolves to a client: a constructor
call, a module global / local / parameter bound to one, or an attribute (``self.cio``) that the
module assigns a client to somewhere.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from cioguard.lint import patterns as p
from cioguard.lint.legacy import legacy_message
from cioguard.lint.literals import over_limit
from cioguard.lint.runs import POOL_METHODS, ROUTE_REGISTRARS, final_name
from cioguard.lint.symbols import CLIENT_CLASSES, METHODS
from cioguard.shapes import id_like_tokens, safe_name

if TYPE_CHECKING:
    from cioguard.lint.checker import Checker

ID_METHODS = frozenset(
    {
        "identify",
        "track",
        "pageview",
        "backfill",
        "delete",
        "add_device",
        "delete_device",
        "suppress",
        "unsuppress",
    }
)
NAME_ARG = {"track": 1, "track_anonymous": 1, "backfill": 1}
TIMESTAMP_ARG = {"track": 4, "track_anonymous": 4, "backfill": 2}


def argument(call: ast.Call, index: int | None, keyword: str) -> ast.expr | None:
    """The argument bound to parameter ``keyword`` (positional ``index``), if it can be told statically."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if (
        index is not None
        and index < len(call.args)
        and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1])
    ):
        return call.args[index]
    return None


def check_call(c: Checker, node: ast.Call) -> None:
    func = node.func
    current = c.func_names[-1] if c.func_names else None
    # a call graph by simple name, for "called per request" (CIO009)
    # (a call of a class runs its __init__)
    if isinstance(func, ast.Name):
        c.calls.setdefault(current, set()).update((func.id, f"{func.id}.__init__"))
        holder = c.index.client_holders.get(func.id)
        if holder is not None:  # another module's class whose __init__ builds a client
            c.via[id(node)] = func.id
            c.ctors.append((current, node, holder, bool(c.scopes[-1].loops)))
    elif (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in {"self", "cls"}
    ):
        owner = c.current_class()
        c.calls.setdefault(current, set()).add(f"{owner}.{func.attr}" if owner else func.attr)
    elif isinstance(func, ast.Attribute):
        # Service().method() or `SERVICE = Service()` ... SERVICE.method(): runs Service.method
        target = c.deref(func.value) if isinstance(func.value, ast.Name) else func.value
        if isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
            c.calls.setdefault(current, set()).add(f"{target.func.id}.{func.attr}")
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        # `cio_api.identify(...)` on another module's instance whose method calls the SDK
        methods = c.index.blocking_instances.get(func.value.id)
        kind = methods.get(func.attr) if methods else None
        if kind is not None and not any(func.value.id in s.values for s in c.scopes[1:]):
            _blocking(c, node, kind, f"{func.value.id}.{func.attr}")
    name = final_name(func)
    if isinstance(func, ast.Attribute) and name in POOL_METHODS and node.args:
        task = node.args[0]
        if isinstance(task, ast.Name):
            c.tasks.add(task.id)
    elif name == "run_in_executor" and len(node.args) > 1 and isinstance(node.args[1], ast.Name):
        c.tasks.add(node.args[1].id)
    elif name == "Thread":
        for kw in node.keywords:
            if kw.arg == "target" and isinstance(kw.value, ast.Name):
                c.tasks.add(kw.value.id)
    if name == "Depends" or name in ROUTE_REGISTRARS:
        # FastAPI dependencies and registered endpoints run per request
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.Name):
                c.handlers.update((arg.id, f"{arg.id}.__init__"))
    if c.index.uses_sdk:
        for kw in node.keywords:
            if kw.arg is not None:
                c.check_timestamp(kw.arg, kw.value)
    qual = c.index.qualname(func) or ""
    if qual in CLIENT_CLASSES:
        _check_constructor(c, node, qual.rsplit(".", 1)[-1], current)
    elif isinstance(func, ast.Attribute):
        kind = c.client_kind(func.value)
        if kind is not None and func.attr in METHODS[kind]:
            _check_sdk_call(c, node, kind, func.attr)


def _check_constructor(c: Checker, node: ast.Call, cls: str, current: str | None) -> None:
    c.ctors.append((current, node, cls, bool(c.scopes[-1].loops)))
    if cls == "APIClient":
        key = argument(node, 0, "key")
        label = None if key is None else p.key_label(key, c.deref)
        if key is not None and p.literal_key_kind(key) == "track":
            label = "a 20-character literal shaped like a Track key"
        if label is not None and "TRACK" in label.upper():
            c.report(
                key or node,
                "CIO001",
                f"APIClient is given a Track API key ({label}); the App API needs the App API key",
            )
    else:
        key = argument(node, 1, "api_key")
        label = None if key is None else p.key_label(key, c.deref)
        if key is not None and p.literal_key_kind(key) == "app":
            label = "a literal shaped like an APP_API key"
        if label is not None and any(word in label.upper() for word in ("APP_API", "APP_KEY", "APPKEY")):
            c.report(
                key or node,
                "CIO001",
                f"CustomerIO is given an App API key ({label}); the Track API needs the site id "
                "and Track API key",
            )


def _check_sdk_call(c: Checker, node: ast.Call, kind: str, method: str) -> None:
    email_id = False
    legacy = legacy_message(node, method) if kind == "track" else None
    if legacy is not None:
        c.report(node, "CIO015", legacy)
    if method in ID_METHODS:
        ident = argument(node, 0, "id" if method == "identify" else "customer_id")
        too_long = over_limit(ident, "customer id")
        if too_long is not None and ident is not None:
            c.report(ident, "CIO014", f"{too_long}: the call is rejected; use a short stable id")
        if ident is not None and p.email_like(ident, c.deref):
            email_id = True
            c.report(
                ident,
                "CIO004",
                f"customer id is an email address ({ast.unparse(ident)}); use an immutable id "
                "and send email as an attribute",
            )
    if method == "identify":
        for kw in node.keywords:
            too_big = over_limit(kw.value, "attribute value") if kw.arg is not None else None
            if too_big is not None:
                c.report(kw.value, "CIO014", f"{too_big}: Customer.io drops the value; send a reference")
    if method == "identify" and not email_id and legacy is None:
        given = {kw.arg for kw in node.keywords}
        if None in given or "email" in given:
            c.email_identified = True
        elif "_update" not in given:
            c.report(node, "CIO005", "identify() without an email attribute; the person cannot receive email")
    if method == "merge_customers":
        _check_merge_ids(c, node)
    if method == "pageview":
        page = argument(node, 1, "page")
        if isinstance(page, ast.Constant) and isinstance(page.value, str):
            pii = p.pii_like(page)
            if pii is not None:
                c.report(page, "CIO012", "page name contains personal data (an email or phone); drop it")
    if method in NAME_ARG:
        event = argument(node, NAME_ARG[method], "name")
        if event is not None:
            _check_event_name(c, event)
    if method in TIMESTAMP_ARG:
        stamp = argument(node, TIMESTAMP_ARG[method], "timestamp")
        if stamp is not None:
            c.check_timestamp("timestamp", stamp, force=True)
    _blocking(c, node, kind, method)


def _blocking(c: Checker, node: ast.Call, kind: str, method: str) -> None:
    """A synchronous SDK call (directly or through an imported wrapper's method): CIO007 where it runs
    per request, or at once inside ``async def``."""
    scope = c.scopes[-1]
    if isinstance(scope.func, ast.FunctionDef) and c.func_names:
        c.sync_calls.append((c.func_names[-1], node, kind, method))  # CIO007 if it runs per request
    if isinstance(scope.func, ast.AsyncFunctionDef):
        c.report(
            node,
            "CIO007",
            f"synchronous Customer.io call {method}() inside async def {scope.func.name}() blocks the "
            "event loop; configure cioguard.instrument() or run it in a thread",
            instrumentable=kind == "track",
        )
    if any(not loop.bounded for loop in scope.loops) and not (
        scope.limited or any(x.limited for x in scope.loops)
    ):
        c.report(
            node,
            "CIO011",
            f"Customer.io call {method}() in a loop over a large or unbounded iterable (not a short "
            "literal, slice or range) with no rate limiting; throttle it or configure "
            "cioguard.instrument(rate_limit=...)",
            instrumentable=kind == "track",
        )


#: merge_customers' (type, id) parameters: (positional index, keyword) of each.
_MERGE_IDS = (((0, "primary_id_type"), (1, "primary_id")), ((2, "secondary_id_type"), (3, "secondary_id")))


def _check_merge_ids(c: Checker, node: ast.Call) -> None:
    """CIO004 for an email given as a person's ``id`` (type ``ID`` / ``"id"``) to merge_customers."""
    for (type_index, type_name), (id_index, id_name) in _MERGE_IDS:
        kind, ident = argument(node, type_index, type_name), argument(node, id_index, id_name)
        if kind is None or ident is None:
            continue
        is_id = (isinstance(kind, ast.Constant) and kind.value == "id") or (
            (c.index.qualname(kind) or "").rsplit(".", 1)[-1] == "ID"
        )
        if is_id and p.email_like(ident, c.deref):
            c.report(ident, "CIO004", f"{id_name} is an email address given as an id; use the email type")


def _check_event_name(c: Checker, event: ast.expr) -> None:
    dynamic = p.dynamic_name(event, c.deref)
    if dynamic is not None:
        how, parts = dynamic
        pii = next((found for found in map(p.pii_like, parts) if found is not None), None)
        if pii is not None:  # it takes precedence over CIO006 (one finding per name, as at run time)
            c.report(
                event, "CIO012", f"event name interpolates personal data ({pii}); put it in data instead"
            )
            return
        c.report(
            event,
            "CIO006",
            f"event name is built dynamically ({how}); use a fixed name and put the variable part in data",
        )
        return
    literal = c.deref(event) if isinstance(event, ast.Name) else event
    if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
        c.event_names.append((event, literal.value))
        too_long = over_limit(literal, "event name")
        if too_long is not None:
            c.report(event, "CIO014", f"{too_long}; use a short fixed name and move details into data")
        # One finding per name, as at run time: personal data over an id-like part over style.
        pii = p.pii_like(literal)
        ids = id_like_tokens(literal.value)
        if pii is not None:
            c.report(event, "CIO012", f"event name contains personal data ({pii}); put it in data instead")
        elif ids:
            c.report(
                event,
                "CIO006",
                f"event name {safe_name(literal.value)} carries an id-like part; use a fixed name and "
                "put the id in data",
            )
        elif not p.SNAKE_RE.match(literal.value):
            c.report(
                event,
                "CIO010",
                f"event name {literal.value!r} is not snake_case; use {p.to_snake(literal.value)!r}",
            )
