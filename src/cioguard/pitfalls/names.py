"""Event-name rules: CIO006 (dynamic names), CIO010 (naming style), CIO012 (PII), CIO014 (length).

Each ``*_finding`` function is pure: name in, :class:`Finding` or ``None`` out. :class:`NameBook`
remembers names already seen (bounded) to name the variant a new name collides with and to warn
once when the number of distinct names explodes. :func:`name_verdict` combines the rules with a
precedence, so one mistake gives one warning: PII (CIO012) over ids (CIO006) over style (CIO010);
the length rule (CIO014) is independent.
"""

from __future__ import annotations

import threading

from cioguard.pitfalls.categories import Finding
from cioguard.shapes import (
    canonical_name,
    find_pii,
    id_like_tokens,
    is_snake_case,
    safe_name,
    utf8_len,
)

#: Customer.io's limit on event names (bytes, after trimming spaces).
MAX_EVENT_NAME_BYTES = 100


def pii_finding(name: str) -> Finding | None:
    """CIO012: personal data inside an event name."""
    kinds = find_pii(name)
    if not kinds:
        return None
    return Finding(
        "CIO012",
        "CIO012 event name contains personal data (an email address, phone or card number): names "
        "are indexed and cannot be erased for GDPR requests. Use a fixed name and put the value in "
        "data={...}.",
        " and ".join(kinds),
    )


def dynamic_finding(name: str) -> Finding | None:
    """CIO006: an id-like token (number, UUID, hex, SKU) inside an event name."""
    if not id_like_tokens(name):
        return None
    return Finding(
        "CIO006",
        "CIO006 event name carries an id-like value: every value makes a new event name, so campaign "
        "triggers and the event catalog break. Use a fixed name and pass the value in data (e.g. "
        "data={'product_id': ...}).",
        f"event name {safe_name(name)}",
    )


def style_finding(name: str, variant_of: str | None = None) -> Finding | None:
    """CIO010: a name that is not snake_case; ``variant_of`` names an earlier spelling of it."""
    if is_snake_case(name):
        return None
    canonical = canonical_name(name)
    detail = f"event name {safe_name(name)}, snake_case {safe_name(canonical)}"
    if variant_of is not None and variant_of != name:
        detail += f", a variant of {safe_name(variant_of)} seen earlier"
    return Finding(
        "CIO010",
        "CIO010 event name is not snake_case: names are case-sensitive, so triggers match only one "
        "spelling. Use snake_case everywhere (signed_up, order_completed).",
        detail,
    )


def length_finding(name: str) -> Finding | None:
    """CIO014: an event name over 100 bytes."""
    size = utf8_len(name.strip())
    if size <= MAX_EVENT_NAME_BYTES:
        return None
    return Finding(
        "CIO014",
        f"CIO014 event name is over Customer.io's {MAX_EVENT_NAME_BYTES}-byte limit. Use a short fixed "
        "name and move details into data.",
        f"event name {safe_name(name, 40)} of {size} bytes",
    )


class NameBook:
    """Bounded memory of event names: variants (CIO010) and the distinct-name bound (CIO006)."""

    def __init__(self, max_names: int = 500) -> None:
        self.max_names = max_names
        self._canonical: dict[str, str] = {}  # canonical form → first spelling seen
        self._explosion: Finding | None = None  # made once, when the bound is crossed
        self._lock = threading.Lock()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()

    def first_spelling(self, name: str) -> str | None:
        """Record ``name``; return the earlier, different spelling of the same name, if any."""
        key = canonical_name(name)
        earlier = self._canonical.get(key)
        if earlier is None and len(self._canonical) <= self.max_names:
            self._canonical[key] = name
        return earlier if earlier != name else None

    def explosion_finding(self) -> Finding | None:
        """CIO006, once per process: more distinct names than ``max_names`` (with examples of the
        names that crossed the bound). Later new names are counted, not warned: the name that comes
        next may well be a fixed one (:attr:`exploded`)."""
        if self._explosion is not None or len(self._canonical) <= self.max_names:
            return None
        with self._lock:
            if self._explosion is not None:
                return None
            examples = ", ".join(safe_name(n, 30) for n in list(self._canonical.values())[-3:])
            self._explosion = Finding(
                "CIO006",
                f"CIO006 more than {self.max_names} distinct event names in this process: names "
                "look generated from data. Keep a fixed set of names and pass the varying part in "
                "data (if your taxonomy really is that large, disabled_pitfalls=['CIO006'] "
                "silences this).",
                f"latest names: {examples}",
            )
            return self._explosion

    @property
    def exploded(self) -> bool:
        return self._explosion is not None


def name_verdict(name: str, book: NameBook, enabled: frozenset[str], *, event: bool = True) -> list[Finding]:
    """All name findings for one (new) name; ``event=False`` for page names (PII and length only)."""
    findings: list[Finding] = []
    picked: Finding | None = None
    if "CIO012" in enabled:
        picked = pii_finding(name)
    if event:
        earlier = book.first_spelling(name)
        if picked is None and "CIO006" in enabled:
            picked = dynamic_finding(name)
        if picked is None and "CIO010" in enabled:
            picked = style_finding(name, earlier)
    if picked is not None:
        findings.append(picked)
    if "CIO014" in enabled:
        too_long = length_finding(name)
        if too_long is not None:
            findings.append(too_long)
    return findings
