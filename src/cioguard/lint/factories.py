"""The app's own client factories and declared event names, found by the linter's module pre-pass.

Called by :meth:`cioguard.lint.symbols.ModuleIndex.build`::

    find_factories(index, functions, assigns)   # get_cio() -> "track"; self.client -> "track"
    find_declarations(index, tree)              # cioguard.declare_events([...]) literal names

A factory is a module-level function (plain, ``@lru_cache``/``@cache``, or a lazy getter filling a
global) or a ``property``/``cached_property`` that returns a client, a client global, or a local
assigned one.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cioguard.lint.symbols import ModuleIndex


def find_factories(
    index: ModuleIndex,
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, bool]],
    assigns: list[tuple[ast.Assign | ast.AnnAssign, bool, bool]],
) -> None:
    """Functions and properties returning a client (two rounds: a factory may call a factory)."""
    for _ in range(2):
        for func, in_class in functions:
            kind = returned_client(index, func)
            if kind is None:
                continue
            if in_class and _is_property(func):
                index.client_attrs.setdefault(func.name, kind)  # index.client.track(...)
            elif not in_class:
                index.client_factories.setdefault(func.name, kind)
        # `cio = get_cio()` at module level or in a class body: a client global / attribute
        for node, module_level, in_class in assigns:
            value = node.value
            kind = index.client_class(value) if isinstance(value, ast.Call) else None
            if kind is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute):
                    index.client_attrs.setdefault(target.attr, kind)
                elif isinstance(target, ast.Name) and in_class:
                    index.client_attrs.setdefault(target.id, kind)
                elif isinstance(target, ast.Name) and module_level:
                    index.client_globals.setdefault(target.id, kind)


def returned_client(index: ModuleIndex, func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The client kind ``func`` returns: a constructor/factory call, a client global, or a local."""
    local: dict[str, str] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            kind = index.client_class(node.value)
            if kind is not None:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        local[target.id] = kind
    for node in ast.walk(func):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = node.value
        if isinstance(value, ast.Call):
            kind = index.client_class(value)
        elif isinstance(value, ast.Name):
            kind = local.get(value.id) or index.client_globals.get(value.id)
        elif isinstance(value, ast.Attribute):
            kind = index.client_attrs.get(value.attr)
        else:
            kind = None
        if kind is not None:
            return kind
    return None


def find_declarations(index: ModuleIndex, tree: ast.Module) -> None:
    """Literal event names passed to ``declare_events`` (a list/tuple/set or a dict's keys)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        qual = index.qualname(node.func) or ""
        if qual.rsplit(".", 1)[-1] != "declare_events" or not qual.startswith("cioguard"):
            continue
        arg = node.args[0]
        items = arg.keys if isinstance(arg, ast.Dict) else getattr(arg, "elts", None)
        if items is None or any(
            not (isinstance(k, ast.Constant) and isinstance(k.value, str)) for k in items
        ):
            continue  # built at run time: names unknown, so no static CIO013 for this project
        index.declares_events = True
        index.declared_events.update(str(k.value) for k in items if isinstance(k, ast.Constant))


def _is_property(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", "")) in {"property", "cached_property"}
        for d in func.decorator_list
    )
