"""Person rules: CIO003 (track before identify), CIO004 (email as id), CIO005 (missing email).

:class:`PersonSet` remembers people in a fixed 1 MiB bitmap (a two-probe Bloom filter over the
string id's hash): 100 000 people cost the same memory as ten, lookups are a few bit operations, and
a false "seen" (about 0.05 % at 100 000 people, 4 % at a million) only ever *hides* a warning, never
invents one. Ids are keyed as ``str(id)``, as the SDK puts them into URLs (``42`` and ``"42"`` are
one person).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cioguard.pitfalls.categories import Finding
from cioguard.shapes import looks_like_email

_BITS = 1 << 23  # 1 MiB
_MASK = _BITS - 1


class PersonSet:
    """A bounded, approximate set of person ids (no false negatives, rare false positives)."""

    __slots__ = ("_bits", "_lock")

    def __init__(self) -> None:
        self._bits = bytearray(_BITS >> 3)
        self._lock = threading.Lock()

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return len(self._bits)

    def __contains__(self, key: str) -> bool:
        h = hash(key)
        bits = self._bits
        a = h & _MASK
        b = (h >> 23) & _MASK
        return bool(bits[a >> 3] & (1 << (a & 7))) and bool(bits[b >> 3] & (1 << (b & 7)))

    def add(self, key: str) -> bool:
        """Add ``key``; True when it was (probably) absent before."""
        h = hash(key)
        a = h & _MASK
        b = (h >> 23) & _MASK
        # The lock keeps two writers to one byte from losing a bit (which would re-warn later).
        with self._lock:
            bits = self._bits
            new = not (bits[a >> 3] & (1 << (a & 7)) and bits[b >> 3] & (1 << (b & 7)))
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)
        return new


_EMAIL_ID: dict[str, Finding] = {}


def email_as_id_finding(method: str, customer_id: Any) -> Finding | None:
    """CIO004: a Track call whose person id is shaped like an email address (the id is not printed)."""
    if not isinstance(customer_id, str) or not looks_like_email(customer_id):
        return None
    found = _EMAIL_ID.get(method)  # constant per method: built once (a repeat is a dict lookup)
    if found is None:
        found = _EMAIL_ID[method] = Finding("CIO004", _email_as_id_message(method))
    return found


#: Calls that address a person who already exists: no profile is made, but one may be missed.
_ADDRESSING = frozenset({"delete", "suppress", "unsuppress", "delete_device", "add_device"})


def _email_as_id_message(method: str) -> str:
    head = f"CIO004 customer id looks like an email address in {method}(): "
    if method in _ADDRESSING:
        return head + (
            "people addressed by email are missed once their email changes, and a workspace that "
            "identifies people by id only takes it as an id that matches nobody. Address people by "
            "your immutable database id (the one given to identify())."
        )
    return head + (
        "emails change, and a changed email creates a second profile. Use your immutable database "
        "id and send email as an attribute (identify(id, email=...))."
    )


def missing_email_finding(customer_id: Any, attributes: Any) -> Finding | None:
    """CIO005 (for a *first* identify): no ``email`` attribute, not an update, id not an email."""
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, Mapping) else {}
    if attrs.get("email") or attrs.get("_update") is True:
        return None
    if isinstance(customer_id, str) and looks_like_email(customer_id):
        return None  # CIO004's business; the person has an email through the id
    if isinstance(customer_id, str) and customer_id.startswith("cio_"):
        return None  # a Customer.io id: an existing person, whose email may well be known there
    return Finding(
        "CIO005",
        "CIO005 first identify() of a person in this process has no 'email' attribute: the profile "
        "exists but cannot receive email campaigns or transactional email. Pass email=... (or "
        "_update=True for a partial update of an existing person).",
    )


def track_before_identify_finding(method: str) -> Finding:
    """CIO003: the message for an event about a person never identified in this process."""
    return Finding(
        "CIO003",
        f"CIO003 {method}() for a person this process never identified: events for a person who does "
        "not exist yet may be dropped or create an empty profile. Call identify(id, email=...) first, "
        "or pass track_before_identify=False if another service identifies people.",
    )


class PeopleRules:
    """CIO003 and CIO005 with their state: people identified, and people already warned about."""

    def __init__(self, recent_size: int = 4096) -> None:
        self.identified = PersonSet()
        self.warned = PersonSet()
        #: A small exact cache in front of ``identified`` (ids as given, str or int).
        self.recent: dict[Any, None] = {}
        self._recent_size = recent_size

    def _remember(self, customer_id: Any) -> None:
        recent = self.recent
        if len(recent) >= self._recent_size:
            recent.clear()  # bounded; the bitmap still knows everyone
        recent[customer_id] = None

    def reset_after_fork(self) -> None:
        self.identified.reset_after_fork()
        self.warned.reset_after_fork()

    def on_identify(self, customer_id: Any, attributes: Any, check_email: bool) -> Finding | None:
        key = customer_id if type(customer_id) is str else str(customer_id)
        first = self.identified.add(key)
        self._remember(customer_id)
        email = attributes.get("email") if type(attributes) is dict else None
        if type(email) is str and "@" in email:
            self.identified.add(email)  # events may address this person by that email
        if first and check_email:
            return missing_email_finding(customer_id, attributes)
        return None

    def on_event(self, method: str, customer_id: Any) -> Finding | None:
        key = customer_id if type(customer_id) is str else str(customer_id)
        if key in self.identified or key.startswith("cio_"):  # a cio_ id: Customer.io made the person
            self._remember(customer_id)
            return None
        if not self.warned.add(key):
            return None  # once per person
        return track_before_identify_finding(method)
