"""``cioguard lint``: a static audit of Python code for Customer.io pitfalls (CIO001...CIO015).

From the command line::

    cioguard lint src/ [--format text|json|sarif] [--select CIO00] [--ignore CIO010]

From Python::

    from cioguard.lint import lint_paths, lint_source
    for diagnostic in lint_source(open("app.py").read(), "app.py"):
        print(diagnostic.text())        # app.py:12:20: CIO006 event name is built dynamically ...

As a flake8 plugin: ``cioguard.lint.flake8:CioGuardChecker`` (codes ``CIO``). The linter imports
nothing from the runtime packages; it follows simple import aliases, client objects kept in module
globals, locals, parameters annotated with an SDK class and attributes (``self.cio``), the app's own
factories (``@lru_cache def get_cio(): ...``, lazy getters, properties, also across modules),
wrapper classes whose ``__init__`` builds a client and their module-level instances (across
modules, see ``exports``), and calls through them. CIO003 and CIO008 are runtime only
(``RUNTIME_ONLY``); CIO013/CIO014 are checked where the data is literal. See ``engine`` for the
project heuristic (CIO007/CIO011) and ``CIO000`` (unparsable file).
"""

from __future__ import annotations

from cioguard.lint.engine import Report, lint_paths, lint_source
from cioguard.lint.rules import RULES, Diagnostic, Rule

__all__ = ["RULES", "Diagnostic", "Report", "Rule", "lint_paths", "lint_source"]
