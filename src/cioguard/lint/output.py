"""Output formats of ``cioguard lint``: flake8-style text, JSON and SARIF 2.1.0.

::

    from cioguard.lint.output import FORMATTERS
    print(FORMATTERS["sarif"](diagnostics))

JSON is a list of ``{"path", "line", "col", "code", "name", "message"}`` objects. SARIF has one run
whose ``tool.driver.rules`` lists every rule (id, name, shortDescription, helpUri into
``docs/pitfalls.md``) and whose results carry ``ruleId``, ``level: "warning"``, the message and a
``physicalLocation`` (relative paths as relative URIs, so code-scanning UIs map them to the repo).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cioguard.lint.rules import RULES, Diagnostic
from cioguard.version import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = RULES["CIO001"].help_uri.split("#", 1)[0]


def format_text(diagnostics: Sequence[Diagnostic]) -> str:
    return "".join(f"{d.text()}\n" for d in diagnostics)


def format_json(diagnostics: Sequence[Diagnostic]) -> str:
    items = [
        {
            "path": d.path,
            "line": d.line,
            "col": d.col,
            "code": d.code,
            "name": RULES[d.code].name,
            "message": d.message,
        }
        for d in diagnostics
    ]
    return json.dumps(items, indent=2) + "\n"


def _uri(path: str) -> str:
    if os.path.isabs(path):
        return Path(path).as_uri()
    return Path(path).as_posix().removeprefix("./")


def format_sarif(diagnostics: Sequence[Diagnostic]) -> str:
    codes = sorted(RULES)
    rules = [
        {
            "id": code,
            "name": RULES[code].name,
            "shortDescription": {"text": RULES[code].summary},
            "helpUri": RULES[code].help_uri,
            "defaultConfiguration": {"level": "warning"},
        }
        for code in codes
    ]
    results: list[dict[str, Any]] = [
        {
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code),
            "level": "warning",
            "message": {"text": d.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(d.path)},
                        "region": {"startLine": d.line, "startColumn": d.col},
                    }
                }
            ],
        }
        for d in diagnostics
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "cioguard",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


FORMATTERS: dict[str, Callable[[Sequence[Diagnostic]], str]] = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
}
