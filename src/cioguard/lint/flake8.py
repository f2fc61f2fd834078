"""flake8 plugin: the ``cioguard lint`` rules as flake8 ``CIO`` codes.

Registered by the entry point ``[project.entry-points."flake8.extension"] CIO =
"cioguard.lint.flake8:CioGuardChecker"``; then ``flake8 --select CIO src/`` runs them. flake8 applies
its own ``# noqa`` and ``--select``/``--extend-ignore`` handling. flake8 checks one file at a time, so
the project heuristic (cioguard configured somewhere, CIO007/CIO011) and clients imported from another
module only see the current file; ``cioguard lint`` sees the whole project.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence

from cioguard.lint.engine import analyse, finalize
from cioguard.version import __version__


class CioGuardChecker:
    name = "cioguard"
    version = __version__

    def __init__(self, tree: ast.Module, filename: str = "<stdin>", lines: Sequence[str] = ()) -> None:
        self.tree = tree
        self.filename = filename
        self.lines = list(lines)

    def run(self) -> Iterator[tuple[int, int, str, type[CioGuardChecker]]]:
        source = "".join(self.lines)
        result = analyse(source, self.filename, self.tree)
        # flake8 applies noqa's job: pass no source lines so nothing is silenced twice
        for diag in finalize([result], {}, instrumented=result.instrumented):
            yield diag.line, diag.col - 1, f"{diag.code} {diag.message}", type(self)
