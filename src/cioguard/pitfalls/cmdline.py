"""Make ``python -W error::cioguard.PitfallWarning`` (and ``PYTHONWARNINGS``) work.

CPython reads ``-W`` options before third-party modules can be imported, so it prints "Invalid -W
option ignored: invalid module name: 'cioguard'" and drops any option naming a cioguard category
(pytest's ``-W`` and ``filterwarnings`` are not affected). When :mod:`cioguard.pitfalls` is imported,
:func:`apply_deferred_options` installs those dropped options itself, in their original order.
"""

from __future__ import annotations

import re
import sys
import warnings

from cioguard.pitfalls.categories import CATEGORIES, PitfallWarning

_ACTIONS = ("default", "always", "ignore", "module", "once", "error")
_applied = False


def _category(name: str) -> type[PitfallWarning] | None:
    if not name.startswith("cioguard."):
        return None
    short = name.rsplit(".", 1)[-1]
    if short == "PitfallWarning":
        return PitfallWarning
    return next((cls for cls in CATEGORIES.values() if cls.__name__ == short), None)


def apply_deferred_options(options: list[str] | None = None) -> int:
    """Install ``-W`` options naming cioguard categories; returns how many (once per process)."""
    global _applied
    if options is None:
        if _applied:
            return 0
        _applied = True
        options = list(sys.warnoptions)
    count = 0
    for option in options:
        parts = [part.strip() for part in option.split(":")]
        if len(parts) < 3 or len(parts) > 5:
            continue
        category = _category(parts[2])
        if category is None:
            continue
        action = next((a for a in _ACTIONS if parts[0] and a.startswith(parts[0])), None)
        if action is None:
            continue
        message = parts[1]
        module = parts[3] if len(parts) > 3 else ""
        lineno = int(parts[4]) if len(parts) > 4 and parts[4].isdigit() else 0
        warnings.filterwarnings(
            action,  # type: ignore[arg-type]
            re.escape(message),
            category,
            re.escape(module) + r"\Z" if module else "",
            lineno,
        )
        count += 1
    return count
