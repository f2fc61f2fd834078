"""Which timestamp findings (CIO002) of a module are about data that reaches Customer.io.

A module that imports ``customerio`` also builds dicts for everything else (a JWT, a cache entry, a
browser payload): a ``*_at`` key holding milliseconds there is nobody's pitfall. A finding counts
when its value is written inside the arguments of an SDK call, or into a variable that the module
later passes to one (``data = {...}; cio.track(id, "paid", data)``, ``data["paid_at"] = ms``)::

    payloads = Payloads()
    with payloads.sdk_call(node, is_sdk):   # around visiting a call's arguments
        ...
    payloads.found(node, message, holder) -> bool   # report now?  (else held under ``holder``)
    for node, message in payloads.reaching_sdk(): ...   # at the end of the module
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager


class Payloads:
    def __init__(self) -> None:
        #: SDK calls whose arguments are being visited (nested calls included)
        self.sdk_depth = 0
        #: the variable an assignment being visited writes to
        self.holder: str | None = None
        self._held: list[tuple[str, ast.AST, str]] = []
        self._names: set[str] = set()  # variables passed (anywhere in the arguments) to SDK calls

    @contextmanager
    def sdk_call(self, node: ast.Call, is_sdk: bool) -> Iterator[None]:
        if not is_sdk:
            yield
            return
        for arg in [*node.args, *(kw.value for kw in node.keywords)]:
            self._names.update(n.id for n in ast.walk(arg) if isinstance(n, ast.Name))
        self.sdk_depth += 1
        try:
            yield
        finally:
            self.sdk_depth -= 1

    @contextmanager
    def assigning(self, target: ast.expr | None) -> Iterator[None]:
        """Visiting the value of ``target = value`` (or ``target[...] = value``)."""
        while isinstance(target, ast.Subscript):
            target = target.value
        previous, self.holder = self.holder, target.id if isinstance(target, ast.Name) else None
        try:
            yield
        finally:
            self.holder = previous

    def found(self, node: ast.AST, message: str) -> bool:
        """True: report now (inside an SDK call). Otherwise held, if a variable holds it."""
        if self.sdk_depth:
            return True
        if self.holder is not None:
            self._held.append((self.holder, node, message))
        return False

    def reaching_sdk(self) -> Iterator[tuple[ast.AST, str]]:
        """Held findings whose variable the module passes to an SDK call."""
        for name, node, message in self._held:
            if name in self._names:
                yield node, message
