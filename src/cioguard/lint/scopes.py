"""What the lint visitor knows about the function and loops it is in, and typed parameters.

:class:`cioguard.lint.checker.Checker` keeps a stack of :class:`Scope` (the module, then each
enclosing function or lambda) and, in each, a stack of :class:`Loop`::

    scope = Scope(func_node)
    scope.values["data"] = dict_node        # the expression last assigned to a name
    scope.clients["cio"] = "track"          # names that hold a Customer.io client
    scope.loops.append(Loop(for_node, bounded=False))
    scope.loops[-1].limited                 # a sleep/limiter call in the loop (CIO011 is quiet)

:func:`annotation_kind` tells a parameter annotated ``CustomerIO`` (or ``Optional[APIClient]``,
``"CustomerIO"``, ``CustomerIO | None``) from any other.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

from cioguard.lint.runs import final_name
from cioguard.lint.symbols import CLIENT_CLASSES

__all__ = ["LIMIT_WORDS", "Func", "Loop", "Scope", "annotation_kind", "parameters"]

#: Words in a call's name that make a loop rate-limited (a sleep, a token bucket, a throttle).
LIMIT_WORDS = ("sleep", "limit", "throttle", "acquire", "wait", "schedule", "bucket", "backoff")
_CLASS_NAMES = frozenset({"CustomerIO", "APIClient"})
Func = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class Loop:
    node: ast.AST
    bounded: bool
    _limited: bool | None = None

    @property
    def limited(self) -> bool:
        """A sleep/limiter/throttle call anywhere in the loop (computed on first use: walks the loop)."""
        if self._limited is None:
            self._limited = any(
                isinstance(sub, ast.Call) and any(w in final_name(sub.func).lower() for w in LIMIT_WORDS)
                for sub in ast.walk(self.node)
            )
        return self._limited


@dataclass
class Scope:
    func: Func | ast.Lambda | None
    #: name -> expression last assigned; None for a parameter, loop or tuple target (value unknown,
    #: but it still shadows an outer name of the same spelling)
    values: dict[str, ast.expr | None] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    loops: list[Loop] = field(default_factory=list)
    limited: bool = False  # decorated with a rate limiter


def parameters(node: Func | ast.Lambda) -> list[ast.arg]:
    """Every parameter of a function or lambda, ``*args`` and ``**kwargs`` included."""
    args = node.args
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def annotation_kind(annotation: ast.expr | None, qualname: Callable[[ast.expr], str | None]) -> str | None:
    """``"track"``/``"app"`` for an annotation naming a client class (``CustomerIO``,
    ``"CustomerIO"``, ``customerio.APIClient``, ``Optional[CustomerIO]``, ``CustomerIO | None``),
    else None. ``qualname`` resolves a name through the module's imports."""
    if annotation is None:
        return None
    if isinstance(annotation, (ast.Name, ast.Attribute)):
        qual = qualname(annotation) or ""
        if qual in CLIENT_CLASSES:
            return "track" if qual.endswith("CustomerIO") else "app"
    elif isinstance(annotation, ast.Constant):
        text = str(annotation.value).split(".")[-1]
        return ("track" if text == "CustomerIO" else "app") if text in _CLASS_NAMES else None
    elif isinstance(annotation, ast.BinOp):
        return annotation_kind(annotation.left, qualname) or annotation_kind(annotation.right, qualname)
    elif isinstance(annotation, ast.Subscript):
        inner = annotation.slice
        elts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        return next((k for k in (annotation_kind(e, qualname) for e in elts) if k is not None), None)
    return None
