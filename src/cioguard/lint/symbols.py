"""Module pre-pass for the linter: imports, Customer.io clients, functions and cioguard markers.

``ModuleIndex.build(tree)`` walks a module once and records what the checker needs before it
visits code in order (a function may use a module global defined below it)::

    index = ModuleIndex.build(ast.parse(source))
    # after "from customerio import CustomerIO as C":
    index.qualname(call.func)        # "customerio.CustomerIO" for C(...)
    index.client_class(call)         # "track" | "app" | None
    index.client_globals             # {"cio": "track"} for a module-level or `global` client
    index.client_attrs               # {"cio": "track"} for self.cio = CustomerIO(...)
    index.client_factories           # {"get_cio": "track"} for def get_cio(): return CustomerIO(...)

A factory is a function (plain, ``@lru_cache``/``@cache``, or a module-level getter that fills a
global on first use) or a property/``cached_property`` that returns a client: ``get_cio().track(...)``
and ``self.client.track(...)`` are then Customer.io calls too.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field

from cioguard.lint.factories import find_declarations, find_factories

#: fully qualified constructor / factory -> client kind
CLIENT_FACTORIES: dict[str, str] = {
    "customerio.CustomerIO": "track",
    "customerio.track.CustomerIO": "track",
    "customerio.APIClient": "app",
    "customerio.api.APIClient": "app",
    "cioguard.track_client": "track",
    "cioguard.app_client": "app",
}
#: the SDK classes themselves (a factory such as track_client() caches; a class call builds a client)
CLIENT_CLASSES = frozenset(k for k in CLIENT_FACTORIES if k.startswith("customerio."))

TRACK_METHODS = frozenset(
    {
        "identify", "track", "track_anonymous", "pageview", "backfill", "delete", "add_device",
        "delete_device", "suppress", "unsuppress", "merge_customers", "batch",
    }
)  # fmt: skip
APP_METHODS = frozenset(
    {"send_email", "send_push", "send_sms", "send_whatsapp", "send_inbox_message", "send_in_app"}
)
METHODS = {"track": TRACK_METHODS, "app": APP_METHODS}

#: names whose presence means cioguard instruments the SDK at run time
INSTRUMENT_MARKERS = frozenset({"instrument", "CustomerIOInstrumentor", "CioGuardMiddleware"})
_CACHE_DECORATORS = frozenset({"lru_cache", "cache", "cached_property", "cached", "singleton"})


def dotted(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """``a.b.c`` with ``a`` resolved through the import aliases; None for non-name expressions."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def is_cached(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in _CACHE_DECORATORS:
            return True
    return False


@dataclass
class ModuleIndex:
    aliases: dict[str, str] = field(default_factory=dict)
    client_globals: dict[str, str] = field(default_factory=dict)
    client_attrs: dict[str, str] = field(default_factory=dict)
    client_factories: dict[str, str] = field(default_factory=dict)
    #: classes imported from another linted module whose ``__init__`` builds an SDK client (kept on
    #: ``self``): {class name: "CustomerIO" | "APIClient"}; instantiating one builds a client
    client_holders: dict[str, str] = field(default_factory=dict)
    #: instances imported from another linted module whose methods call the SDK synchronously:
    #: {instance name: {method: "track" | "app"}} (``cio_api = CIOApi()`` in ``cio.py``)
    blocking_instances: dict[str, dict[str, str]] = field(default_factory=dict)
    #: classes defined here that extend an SDK client class (``class Cio(CustomerIO)``): {name: kind}
    client_subclasses: dict[str, str] = field(default_factory=dict)
    #: event names given to ``declare_events`` in this module (CIO013 across the project)
    declared_events: set[str] = field(default_factory=set)
    declares_events: bool = False
    instrumented: bool = False
    uses_sdk: bool = False

    def qualname(self, node: ast.expr) -> str | None:
        return dotted(node, self.aliases)

    def client_class(self, node: ast.expr) -> str | None:
        """The client kind built by ``node`` when it is a call to an SDK class or cioguard factory."""
        if not isinstance(node, ast.Call):
            return None
        qual = self.qualname(node.func) or ""
        kind = CLIENT_FACTORIES.get(qual) or self.client_subclasses.get(qual)
        if kind is None and qual:
            # the app's own factory: get_cio() here, or `from app.cio import get_cio` elsewhere
            kind = self.client_factories.get(qual.rsplit(".", 1)[-1] if "." in qual else qual)
        return kind

    @classmethod
    def build(
        cls, tree: ast.Module, external_clients: Mapping[str, str] | None = None, source: str | None = None
    ) -> ModuleIndex:
        """Index ``tree``; with ``source`` the marker search is skipped when "cioguard" is not in it."""
        index = cls()
        assigns: list[tuple[ast.Assign | ast.AnnAssign, bool, bool]] = []
        functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]] = []
        index._scan(
            tree.body, assigns, module_level=True, in_class=False, globals_=frozenset(), functions=functions
        )
        # two rounds: the second sees `self.client = cio` once `cio = CustomerIO(...)` is known
        for node, module_level, in_class in assigns * 2:
            value = node.value
            if isinstance(value, ast.Name):
                kind = index.client_globals.get(value.id)
            else:
                kind = index.client_class(value) if value is not None else None
            if kind is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute):
                    index.client_attrs[target.attr] = kind
                elif isinstance(target, ast.Name) and in_class:
                    index.client_attrs[target.id] = kind  # class attribute, used as self.<name>
                elif isinstance(target, ast.Name) and module_level:
                    index.client_globals[target.id] = kind  # module global or `global`-declared
        if external_clients:
            for name, dotted_name in index.aliases.items():
                # `from app.clients import cio` where another linted module defines the global `cio`
                if dotted_name.rsplit(".", 1)[-1] == name and name in external_clients:
                    kind = external_clients[name]
                    if kind.startswith("factory:"):
                        index.client_factories.setdefault(name, kind.split(":", 1)[1])
                    elif kind.startswith("holder:"):
                        index.client_holders.setdefault(name, kind.split(":", 1)[1])
                    elif kind.startswith("calls:"):
                        methods = index.blocking_instances.setdefault(name, {})
                        for pair in kind.split(":", 1)[1].split(","):
                            method, _, client = pair.partition("=")
                            methods[method] = client
                    else:
                        index.client_globals.setdefault(name, kind)
        find_factories(index, functions, assigns)
        if source is None or "cioguard" in source:
            index.find_markers(tree)
        index.uses_sdk = bool(index.client_factories) or any(
            v.split(".")[0] in {"customerio", "cioguard"} for v in index.aliases.values()
        )
        find_declarations(index, tree)
        return index

    def _scan(
        self,
        body: list[ast.stmt],
        assigns: list[tuple[ast.Assign | ast.AnnAssign, bool, bool]],
        *,
        module_level: bool,
        in_class: bool,
        globals_: frozenset[str],
        functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]],
    ) -> None:
        """Collect imports, client assignments and functions (expressions are not entered)."""
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if module_level or in_class:
                    functions.append((node, in_class))
                declared = frozenset(_global_names(node.body))
                self._scan(
                    node.body,
                    assigns,
                    module_level=False,
                    in_class=False,
                    globals_=declared,
                    functions=functions,
                )
            elif isinstance(node, ast.ClassDef):
                for parent in node.bases:  # a subclass of the SDK's client is a client too
                    parent_name = self.qualname(parent) or ""
                    if parent_name in CLIENT_CLASSES:
                        self.client_subclasses[node.name] = CLIENT_FACTORIES[parent_name]
                self._scan(
                    node.body,
                    assigns,
                    module_level=module_level,
                    in_class=True,
                    globals_=globals_,
                    functions=functions,
                )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        self.aliases[head] = head
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base and not base.endswith(".") else base + alias.name
                    self.aliases[alias.asname or alias.name] = full
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                is_global = module_level or (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id in globals_ for t in node.targets)
                )
                assigns.append((node, is_global, in_class))
            elif isinstance(node, _COMPOUND):
                for block in _blocks(node):
                    self._scan(
                        block,
                        assigns,
                        module_level=module_level,
                        in_class=in_class,
                        globals_=globals_,
                        functions=functions,
                    )

    def find_markers(self, tree: ast.Module) -> None:
        """Set ``instrumented`` when the module references cioguard.instrument & co."""
        for name, full in self.aliases.items():
            if full.startswith("cioguard") and name in INSTRUMENT_MARKERS:
                self.instrumented = True
                return
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in INSTRUMENT_MARKERS:
                base_name = dotted(node.value, self.aliases)
                if base_name is not None and base_name.startswith("cioguard"):
                    self.instrumented = True
                    return


_COMPOUND: tuple[type[ast.stmt], ...] = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match,
    *((ast.TryStar,) if hasattr(ast, "TryStar") else ()),
)  # fmt: skip


def _blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists nested in a compound statement (if/for/while/with/try/match)."""
    blocks: list[list[ast.stmt]] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list):
            blocks.append(value)
    blocks.extend(handler.body for handler in getattr(node, "handlers", ()))
    blocks.extend(case.body for case in getattr(node, "cases", ()))
    return blocks


def _global_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Global):
            names.update(node.names)
        elif isinstance(node, _COMPOUND):
            for block in _blocks(node):
                names |= _global_names(block)
    return names
