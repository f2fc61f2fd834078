"""What one linted module offers the others: wrapper classes and instances around the SDK.

``cioguard lint`` lints a project in two passes; these summaries of the first pass travel to the
modules that import the names (see :func:`cioguard.lint.engine.analyse`)::

    holder_classes(checker)       # {"CustomerIOService": "CustomerIO"}: __init__ builds a client
    blocking_instances(checker)   # {"cio_api": {"identify": "track"}}: methods call the SDK
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cioguard.lint.checker import Checker


def holder_classes(c: Checker) -> dict[str, str]:
    """Classes whose ``__init__`` builds a client kept on ``self``: {class: SDK class}.

    Another module that instantiates one per request, per item or per task builds a client each
    time (CIO009 there); within this module the call graph already links ``Cls()`` to it.
    """
    return {
        func.rsplit(".", 1)[0]: cls
        for func, node, cls, _in_loop in c.ctors
        if func is not None
        and func.count(".") == 1
        and func.endswith(".__init__")
        and id(node) not in c.stored
        and id(node) not in c.via
    }


def blocking_instances(c: Checker) -> dict[str, dict[str, str]]:
    """Module-level instances (``cio_api = CIOApi()``) of classes whose methods call the SDK
    synchronously: {name: {method: client kind}}, for CIO007 in the modules that import them."""
    methods: dict[str, dict[str, str]] = {}
    for func, _node, kind, _method in c.sync_calls:
        if func.count(".") == 1:
            cls, name = func.split(".")
            methods.setdefault(cls, {})[name] = kind
    return {
        name: methods[value.func.id]
        for name, value in c.scopes[0].values.items()
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in methods
    }
