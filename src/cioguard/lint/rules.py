"""The lint rule table, the :class:`Diagnostic` record and ``--select``/``--ignore`` matching.

Codes are the same as the runtime pitfall warnings (see ``docs/pitfalls.md``); ``CIO000`` is the
linter's own code for a file it could not read as Python (a syntax or decoding error)::

    from cioguard.lint.rules import RULES, code_enabled
    RULES["CIO006"].name                              # "DynamicEventName"
    code_enabled("CIO006", select=["CIO"], ignore=["CIO01"])   # True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Where each rule is explained; SARIF ``helpUri`` is ``f"{DOCS_URL}#{code.lower()}"``.
DOCS_URL = "https://github.com/cioguard/cioguard/blob/main/docs/pitfalls.md"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.code.lower()}"


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("CIO000", "UnparsableFile", "The file could not be parsed as Python, so it was not audited."),
        Rule(
            "CIO001", "WrongApiKey", "A Track API key is given to APIClient, or an App API key to CustomerIO."
        ),
        Rule(
            "CIO002", "MillisecondTimestamp", "A timestamp in milliseconds where Unix seconds are required."
        ),
        Rule("CIO004", "EmailAsId", "An email address used as the customer id."),
        Rule("CIO005", "MissingEmail", "identify() without an email attribute."),
        Rule("CIO006", "DynamicEventName", "An event name built at run time from variable parts."),
        Rule(
            "CIO007",
            "BlockingCall",
            "A synchronous Customer.io call in async code or a web view makes the request wait.",
        ),
        Rule(
            "CIO009",
            "ClientPerRequest",
            "A Customer.io client constructed per request, per loop iteration or per pool task.",
        ),
        Rule("CIO010", "InconsistentEventName", "An event name that is not snake_case."),
        Rule("CIO011", "RateLimit", "Customer.io calls in an unbounded loop without rate limiting."),
        Rule("CIO012", "PiiInEventName", "An email, phone or card number inside an event name."),
        Rule("CIO013", "EventSchema", "A literal event name outside the taxonomy the project declares."),
        Rule(
            "CIO014", "PayloadLimit", "A literal event name, id or attribute value over Customer.io's limits."
        ),
        Rule(
            "CIO015",
            "LegacyCall",
            "A customerio 1.x/2.x style call (keyword properties, **kwargs) that 3.x rejects with TypeError.",
        ),
    )
}

#: Codes only the runtime can see (no static counterpart): the order of calls in a process (CIO003)
#: and bounces reported by webhooks (CIO008).
RUNTIME_ONLY = ("CIO003", "CIO008")


def unknown_codes(codes: Sequence[str]) -> list[str]:
    """Codes or prefixes in ``codes`` that match no rule (``CIO999``, ``CIO1``, ``XYZ``)."""
    return [code for code in codes if not any(known.startswith(code) for known in RULES)]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. ``line`` and ``col`` are 1-based (flake8 and SARIF convention)."""

    path: str
    line: int
    col: int
    code: str
    message: str
    #: set for CIO007/CIO011 on Track calls: dropped when the project configures cioguard
    #: (background delivery makes such calls non-blocking and rate-limited).
    instrumentable: bool = field(default=False, compare=False)

    def text(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


def parse_codes(value: str | None) -> list[str]:
    """``"CIO006, CIO01"`` -> ``["CIO006", "CIO01"]`` (empty items dropped, upper-cased)."""
    if not value:
        return []
    return [item.strip().upper() for item in value.split(",") if item.strip()]


def code_enabled(code: str, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> bool:
    """flake8-style prefix matching: the longest matching prefix of ``select``/``ignore`` decides.

    An empty ``select`` selects everything; on a tie ``ignore`` wins.
    """
    best_select = max((len(p) for p in select if code.startswith(p)), default=-1) if select else 0
    best_ignore = max((len(p) for p in ignore if code.startswith(p)), default=-1)
    if best_select < 0:
        return False
    return best_ignore < best_select or best_ignore < 0
