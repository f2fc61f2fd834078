"""Find the user's frame so warnings point at the line that called the SDK.

Wrappers may be nested (wrapt's pure-Python fallback adds frames, the SDK's own methods call
``send_request``), so a fixed ``stacklevel`` would be wrong somewhere. Only called when a warning is
about to be shown, never on the hot path.
"""

from __future__ import annotations

import sys

_INTERNAL_PREFIXES = ("cioguard.", "wrapt.", "customerio.", "opentelemetry.", "requests.", "urllib3.")
_INTERNAL_NAMES = frozenset({"cioguard", "wrapt", "customerio", "contextlib"})


#: cioguard modules that are applications or test tools, not wrappers: their lines are "user" lines.
_USER_PREFIXES = ("cioguard.testing", "cioguard.demo")


def _is_internal(module: str) -> bool:
    if module.startswith(_USER_PREFIXES):
        return False
    return module in _INTERNAL_NAMES or module.startswith(_INTERNAL_PREFIXES)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the *calling* function name the user's line."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and _is_internal(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    return level
