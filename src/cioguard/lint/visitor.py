"""A faster ``ast.NodeVisitor`` for the lint checker: it visits every file of a project.

``ast.NodeVisitor.visit`` builds a method name for every node it meets; :class:`FastVisitor` caches
the method per node type and does not descend into nodes with nothing to check below them
(names, literals, operators, imports)::

    class Checker(FastVisitor):
        def visit_Call(self, node: ast.Call) -> None: ...
"""

from __future__ import annotations

import ast

__all__ = ["FastVisitor"]

#: node types with nothing to check below them (names, literals, contexts, operators)
_LEAVES: tuple[type[ast.AST], ...] = (
    ast.Name, ast.Constant, ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop, ast.alias,
    ast.Import, ast.ImportFrom, ast.Pass, ast.Break, ast.Continue, ast.Global, ast.Nonlocal,
)  # fmt: skip


class FastVisitor(ast.NodeVisitor):
    """``ast.NodeVisitor`` with its dispatch cached per node type and leaf nodes skipped."""

    #: node type -> method name ("" for a leaf); one dict per subclass (methods differ)
    _dispatch: dict[type[ast.AST], str] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}

    def visit(self, node: ast.AST) -> None:
        # ast.NodeVisitor.visit builds a method name per node; this caches it per node type (hot path)
        kind = type(node)
        name = self._dispatch.get(kind)
        if name is None:
            if issubclass(kind, _LEAVES):
                name = ""
            else:
                name = "visit_" + kind.__name__
                name = name if hasattr(self, name) else "generic_visit"
            self._dispatch[kind] = name
        if name:
            getattr(self, name)(node)

    def generic_visit(self, node: ast.AST) -> None:
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)
