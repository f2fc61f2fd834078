"""The AST visitor behind ``cioguard lint``: finds Customer.io calls and checks each pitfall rule.

Use it through :func:`cioguard.lint.engine.lint_source`; directly::

    index = ModuleIndex.build(tree)
    checker = Checker(index, "app.py")
    checker.visit(tree)
    checker.finish()          # per-request client construction (CIO009) needs the whole module
    checker.diagnostics       # list[Diagnostic], unfiltered (no noqa/select applied)

Data flow is deliberately simple: within one function (or the module body) a name stands for the
expression last assigned to it in source order; conditionals and loops are not merged.
"""

from __future__ import annotations

import ast

from cioguard.lint import patterns as p
from cioguard.lint.calls import check_call
from cioguard.lint.payloads import CallKind, Payloads, call_kind
from cioguard.lint.rules import Diagnostic
from cioguard.lint.runs import TASK_DECORATORS, final_name, is_route_handler, report_runs
from cioguard.lint.scopes import Func, Loop, Scope, annotation_kind, parameters
from cioguard.lint.symbols import METHODS, ModuleIndex, is_cached
from cioguard.lint.visitor import FastVisitor


class Checker(FastVisitor):
    def __init__(self, index: ModuleIndex, path: str) -> None:
        self.index = index
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        #: An identify() here passes an email (or a ``**`` splat that may hold one): the project's
        #: email-less identify() calls are then taken as later updates (no CIO005).
        self.email_identified = False
        self.scopes: list[Scope] = [Scope(None)]
        #: keys of the enclosing functions: "name", or "Class.name" for a method
        self.func_names: list[str] = []
        #: the class whose body directly encloses the current point (None inside a function)
        self.classes: list[str | None] = [None]
        self.stored: set[int] = set()  # ids of constructor calls assigned to a global or attribute
        self.ctors: list[tuple[str | None, ast.Call, str, bool]] = []
        #: ids of ctors that instantiate another module's client-holding class -> that class's name
        self.via: dict[int, str] = {}
        self.handlers: set[str] = set()
        self.calls: dict[str | None, set[str]] = {}
        self.cached: set[str] = set()
        #: functions run once per item: pool/executor tasks, thread targets, Celery-style tasks
        self.tasks: set[str] = set()
        #: SDK calls in sync functions: (function, node, client kind, method), CIO007 when per request
        self.sync_calls: list[tuple[str, ast.Call, str, str]] = []
        #: literal event names given to track()-like calls (static CIO013 across the project)
        self.event_names: list[tuple[ast.expr, str]] = []
        #: CIO002 only for data that reaches an SDK call (not a JWT or cache dict of the module)
        self.payloads = Payloads()
        self.tree: ast.AST = ast.Module(body=[], type_ignores=[])  # set by visit_Module

    # ----------------------------------------------------------------- reporting and lookups
    def report(self, node: ast.AST, code: str, message: str, *, instrumentable: bool = False) -> None:
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        self.diagnostics.append(Diagnostic(self.path, line, col, code, message, instrumentable))

    def deref(self, node: ast.expr) -> ast.expr | None:
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                if node.id in scope.values:
                    return scope.values[node.id]
        return None

    def client_kind(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Call):
            return self.index.client_class(node)
        if isinstance(node, ast.Attribute):
            return self.index.client_attrs.get(node.attr)
        if isinstance(node, ast.Name):
            for scope in reversed(self.scopes):
                if node.id in scope.clients:
                    return scope.clients[node.id]
                if node.id in scope.values:
                    return None  # shadowed by a local that is not a client
            return self.index.client_globals.get(node.id)
        return None

    # ----------------------------------------------------------------- scopes
    def _visit_function(self, node: Func | ast.Lambda) -> None:
        scope = Scope(node)
        if not isinstance(node, ast.Lambda):
            for deco in node.decorator_list:
                self.visit(deco)
            owner = self.classes[-1]
            name = f"{owner}.{node.name}" if owner else node.name
            if is_cached(node):
                self.cached.add(name)
            scope.limited = any(
                any(w in final_name(d).lower() for w in ("limit", "throttle", "sleep"))
                for d in node.decorator_list
            )
            if is_route_handler(node):
                self.handlers.add(name)
            if any(final_name(d) in TASK_DECORATORS for d in node.decorator_list):
                self.tasks.add(name)
            for arg in parameters(node):
                scope.values[arg.arg] = None
                kind = self._annotation_kind(arg.annotation)
                if kind is not None:
                    scope.clients[arg.arg] = kind
            self.func_names.append(name)
            body: list[ast.stmt] = node.body
        else:
            for arg in parameters(node):
                scope.values[arg.arg] = None
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(default)
        self.scopes.append(scope)
        self.classes.append(None)
        if isinstance(node, ast.Lambda):
            self.visit(node.body)
        else:
            for stmt in body:
                self.visit(stmt)
            self.func_names.pop()
        self.classes.pop()
        self.scopes.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self.classes.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.classes.pop()

    def current_class(self) -> str | None:
        """The class of the method being visited (``self.m()`` calls resolve to ``Class.m``)."""
        key = self.func_names[-1] if self.func_names else ""
        return key.rsplit(".", 1)[0] if "." in key else None

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _visit_function

    def _annotation_kind(self, annotation: ast.expr | None) -> str | None:
        return annotation_kind(annotation, self.index.qualname) if self.index.uses_sdk else None

    # ----------------------------------------------------------------- bindings
    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        scope = self.scopes[-1]
        if isinstance(target, ast.Name):
            scope.values[target.id] = value
            kind = None if value is None else self.client_kind(value)
            if kind is not None:
                scope.clients[target.id] = kind
            else:
                scope.clients.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                if isinstance(elt, ast.Name):
                    scope.values[elt.id] = None
                    scope.clients.pop(elt.id, None)
        elif isinstance(target, ast.Subscript) and value is not None and self.index.uses_sdk:
            key = target.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.check_timestamp(key.value, value)

    def _mark_stored(self, targets: list[ast.expr], value: ast.expr | None) -> None:
        if isinstance(value, ast.Call) and self.index.client_class(value) is not None:
            global_names = self.index.client_globals
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and self.current_class() is not None
                ):
                    continue  # one client per instance: per request if the class is built per request
                # kept in a global, an attribute or a cache dict: built once, not per request
                if isinstance(target, (ast.Attribute, ast.Subscript)) or (
                    isinstance(target, ast.Name)
                    and (
                        (target.id in global_names and len(self.scopes) == 1)
                        or self._declared_global(target.id)
                    )
                ):
                    self.stored.add(id(value))

    def _declared_global(self, name: str) -> bool:
        func = self.scopes[-1].func
        if func is None or isinstance(func, ast.Lambda):
            return func is None
        return any(isinstance(g, ast.Global) and name in g.names for g in ast.walk(func))

    def visit_Assign(self, node: ast.Assign) -> None:
        self._mark_stored(node.targets, node.value)
        with self.payloads.assigning(node.targets[0] if len(node.targets) == 1 else None):
            self.visit(node.value)
        for target in node.targets:
            with self.payloads.assigning(target):
                self._bind(target, node.value)
            if not isinstance(target, ast.Name):
                self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._mark_stored([node.target], node.value)
        with self.payloads.assigning(node.target):
            if node.value is not None:
                self.visit(node.value)
            self._bind(node.target, node.value)
        kind = self._annotation_kind(node.annotation)
        if kind is not None and isinstance(node.target, ast.Name):
            self.scopes[-1].clients[node.target.id] = kind

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind(item.optional_vars, item.context_expr)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    # ----------------------------------------------------------------- loops
    def _loop(self, node: ast.AST, bounded: bool, parts: list[ast.AST]) -> None:
        scope = self.scopes[-1]
        scope.loops.append(Loop(node, bounded))
        for part in parts:
            self.visit(part)
        scope.loops.pop()

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        # ``for status in ("active", "canceled")``: the name stands for one of those literals
        # (an event name built from it has a few known values: not dynamic, CIO006).
        self._bind(node.target, node.iter if p.literal_choices(node.iter) else None)
        self._loop(
            node, p.bounded_iterable(node.iter, self.index.qualname, self.deref), [node.target, *node.body]
        )
        for stmt in node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self._loop(node, False, [node.test, *node.body])
        for stmt in node.orelse:
            self.visit(stmt)

    def _visit_comp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        self.visit(node.generators[0].iter)
        bounded = all(
            p.bounded_iterable(gen.iter, self.index.qualname, self.deref) for gen in node.generators
        )
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        rest: list[ast.AST] = [*node.generators[1:], *node.generators[0].ifs]
        self._loop(node, bounded, [*rest, *elts])

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comp

    # ----------------------------------------------------------------- calls
    def visit_Module(self, node: ast.Module) -> None:
        self.tree = node
        self.generic_visit(node)

    def call_kind(self, node: ast.Call) -> CallKind:
        func = node.func
        sdk = False
        if isinstance(func, ast.Attribute):
            kind = self.client_kind(func.value)
            sdk = kind is not None and func.attr in METHODS[kind]
        return call_kind(node, sdk, self.index.qualname)

    def visit_Call(self, node: ast.Call) -> None:
        with self.payloads.call(node, self.call_kind(node)):
            check_call(self, node)
            self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        with self.payloads.assigning(node.target):  # data |= {...}
            self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        if self.index.uses_sdk:
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    self.check_timestamp(key.value, value)
        self.generic_visit(node)

    def check_timestamp(self, key: str, value: ast.expr, *, force: bool = False) -> None:
        if force or p.TIMESTAMP_KEY_RE.match(key):
            text = p.ms_timestamp(value, self.index.qualname, self.deref)
            if text is not None:
                message = (
                    f"timestamp {key!r} is in milliseconds ({text}); Customer.io expects Unix seconds: "
                    "use int(time.time())"
                )
            elif (text := p.iso_timestamp(value)) is not None:
                message = (
                    f"timestamp {key!r} is an ISO-8601 string ({text[:40]}); Customer.io needs Unix "
                    "seconds to compare dates in segments: use int(dt.timestamp())"
                )
            else:
                return
            if force or self.payloads.found(value, message):
                self.report(value, "CIO002", message)

    # ----------------------------------------------------------------- end of module
    def finish(self) -> None:
        """Per-request and per-item findings (CIO007, CIO009), and the CIO002 findings in data
        passed to the SDK later: they need the whole module."""
        for node, message in self.payloads.reaching_sdk(self.tree, self.call_kind):
            self.report(node, "CIO002", message)
        report_runs(self)
