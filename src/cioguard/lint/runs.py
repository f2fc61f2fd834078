"""When code runs per request or per item: web views, pool tasks, and the findings that depend on it.

``cioguard lint`` reports CIO007 for a synchronous SDK call in a function that serves web requests
(Flask/Django/Pyramid/Starlette/FastAPI views and what they call) and CIO009 for a client built in
such a function, in a loop, or in a function run once per item (``executor.submit``/``map``,
``Thread(target=...)``, ``@shared_task``/``@app.task``). Used by the checker at the end of a module::

    is_route_handler(function_node)      # @app.get(...), @bp.route, @view_config, view(request) ...
    report_runs(checker)                 # CIO007/CIO009 from what the checker collected
"""

from __future__ import annotations

import ast
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cioguard.lint.checker import Checker

ROUTE_REGISTRARS = frozenset(
    {"Route", "WebSocketRoute", "add_url_rule", "add_api_route", "add_route", "path", "re_path", "url"}
)


ROUTE_ATTRS = frozenset(
    {"get", "post", "put", "delete", "patch", "route", "api_route", "head", "options", "websocket",
     "before_request", "after_request", "view"}
)  # fmt: skip
VIEW_DECORATORS = frozenset(
    {"api_view", "require_http_methods", "require_GET", "require_POST", "csrf_exempt", "view_config",
     "login_required", "action"}
)  # fmt: skip
#: methods of class-based views (Django, DRF viewsets, Flask MethodView, Pyramid) that take the request
VIEW_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "dispatch", "list", "create",
     "retrieve", "update", "partial_update", "destroy", "form_valid", "form_invalid", "perform_create",
     "perform_update", "perform_destroy", "__call__"}
)  # fmt: skip
#: view methods that run per request without taking it as a parameter (``self.request`` holds it):
#: Django's form views, DRF's perform_* hooks
REQUEST_HOOKS = frozenset(
    {"form_valid", "form_invalid", "perform_create", "perform_update", "perform_destroy"}
)
#: executor / pool methods whose first argument runs once per item (CIO009 for clients built there)
POOL_METHODS = frozenset({"submit", "map", "imap", "imap_unordered", "starmap", "apply_async", "map_async"})
TASK_DECORATORS = frozenset({"task", "shared_task", "actor", "job"})


def is_route_handler(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """``@app.get(...)``/``@router.post``/``@bp.route``/``@api_view``, or a view taking ``request`` first."""
    for deco in node.decorator_list:
        if (
            isinstance(deco, ast.Call)
            and isinstance(deco.func, ast.Attribute)
            and deco.func.attr in ROUTE_ATTRS
        ):
            return True
        if final_name(deco) in VIEW_DECORATORS:
            return True
    if node.name.startswith("test") or any(final_name(d) == "fixture" for d in node.decorator_list):
        return False  # pytest's `request` fixture is not a web request
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    if params and params[0] in {"self", "cls"}:
        if node.name not in VIEW_METHODS:
            return False  # a helper like Mailer.send(self, request: SendEmailRequest), not a view
        if node.name in REQUEST_HOOKS:
            return True
        params = params[1:]
    return bool(params) and params[0] in {"request", "req"}


def per_request_functions(
    handlers: Iterable[str], calls: Mapping[str | None, Iterable[str]], cached: Container[str]
) -> set[str]:
    """Handlers plus every function they call, transitively by name (cached factories stop the walk)."""
    found = set(handlers)
    frontier = list(found)
    while frontier:
        for callee in calls.get(frontier.pop(), ()):
            if callee not in found and callee not in cached:
                found.add(callee)
                frontier.append(callee)
    return found


def final_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def report_runs(c: Checker) -> None:
    """CIO009 for clients built per request, per loop item or per task; CIO007 in sync views."""
    per_request = per_request_functions(c.handlers, c.calls, c.cached)
    per_task = per_request_functions(c.tasks, c.calls, c.cached)
    for func, node, cls, in_loop in c.ctors:
        if id(node) in c.stored or (func is not None and func in c.cached):
            continue
        if in_loop or (func is not None and (func in per_request or func in per_task)):
            if in_loop:
                where = "in a loop"
            elif func in per_request:
                where = f"per request in {func}()"
            else:
                where = f"per task in {func}() (run once per item)"
            via = c.via.get(id(node))
            built = (
                f"{via}() builds a {cls} client in its __init__ and is instantiated"
                if via
                else f"{cls}() client is constructed"
            )
            shared = "cioguard.app_client()" if cls == "APIClient" else "cioguard.track_client()"
            c.report(
                node,
                "CIO009",
                f"{built} {where}; create one client at module level (or use {shared}) and reuse it",
            )
    for func, node, kind, method in c.sync_calls:
        if func in per_request:
            c.report(
                node,
                "CIO007",
                f"synchronous Customer.io call {method}() in {func}(), which serves web requests: "
                "every response waits for Customer.io; configure cioguard.instrument() (background "
                "delivery) or send from a task queue",
                instrumentable=kind == "track",
            )
