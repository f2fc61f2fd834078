"""CIO008: bounce and complaint handling — the state shared with the reporting-webhook receiver.

The webhook receiver (:mod:`cioguard.webhooks`) calls :func:`register_receiver` when it is created and
:func:`record_bounce` for every ``bounced`` or ``spammed`` event, once with the customer id and once
with the recipient address::

    from cioguard.pitfalls import bounces

    bounces.register_receiver()
    bounces.record_bounce("user-42")
    bounces.record_bounce("jane@example.com")
    bounces.is_bounced("JANE@example.com")   # True: emails compare case-insensitively

Only keyed 64-bit hashes are stored (never the ids or addresses), in insertion order, bounded to
:data:`MAX_BOUNCED` entries (the oldest are forgotten first). The state is per process: with several
worker processes, the worker that receives the webhook is the one that knows.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from cioguard import forks
from cioguard.pitfalls.categories import Finding

MAX_BOUNCED = 100_000
_KEY = os.urandom(16)  # keyed hashes: the stored values cannot be reversed by guessing ids

_lock = threading.Lock()
_bounced: OrderedDict[bytes, None] = OrderedDict()
_receivers = 0


def _digest(identifier: object) -> bytes:
    text = str(identifier).strip()
    if "@" in text:
        text = text.lower()  # email addresses are case-insensitive at Customer.io
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, key=_KEY).digest()


def register_receiver() -> None:
    """Declare that this process receives Customer.io reporting webhooks (bounces, complaints)."""
    global _receivers
    with _lock:
        _receivers += 1


def unregister_receiver() -> None:
    """Undo one :func:`register_receiver` (a receiver app shut down)."""
    global _receivers
    with _lock:
        _receivers = max(0, _receivers - 1)


def has_receiver() -> bool:
    return _receivers > 0


def record_bounce(identifier: str) -> None:
    """Remember that the person (customer id, or email address) bounced or complained."""
    if identifier is None or str(identifier).strip() == "":
        return
    digest = _digest(identifier)
    with _lock:
        _bounced[digest] = None
        _bounced.move_to_end(digest)
        while len(_bounced) > MAX_BOUNCED:
            _bounced.popitem(last=False)


def is_bounced(identifier: object) -> bool:
    """True when :func:`record_bounce` saw this customer id or email address (and has not forgotten it)."""
    if identifier is None:
        return False
    return _digest(identifier) in _bounced


def clear() -> None:
    """Forget every bounce and receiver (tests, or a new webhook secret)."""
    global _receivers
    with _lock:
        _bounced.clear()
        _receivers = 0


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


forks.in_child(_after_fork_in_child)


def request_identifiers(request: Any) -> list[Any]:
    """Customer ids and addresses an App API send request is about (``identifiers`` and ``to``)."""
    if not isinstance(request, dict):
        to_dict = getattr(request, "_to_dict", None)  # the SDK's Send*Request objects
        request = to_dict() if callable(to_dict) else None
        if not isinstance(request, dict):
            return []
    found: list[Any] = []
    identifiers = request.get("identifiers")
    if isinstance(identifiers, dict):
        found.extend(v for v in identifiers.values() if v is not None)
    to = request.get("to")
    if isinstance(to, str):
        # "Jane <jane@example.com>, bob@example.com" → addresses
        for part in to.split(","):
            address = part.strip()
            if "<" in address and address.endswith(">"):
                address = address[address.index("<") + 1 : -1]
            if address:
                found.append(address)
    return found


def no_receiver_finding(method: str) -> Finding | None:
    """An email send while no webhook receiver is registered (the engine reports the first only)."""
    if has_receiver():
        return None
    return Finding(
        "CIO008",
        f"CIO008 {method}() while no reporting-webhook receiver runs in this process: sending again to "
        "addresses that bounced or complained ruins your sender reputation. Mount "
        "cioguard.webhooks (it records bounces) or disable CIO008 if another service handles them.",
    )


def bounced_finding(method: str, identifiers: Iterable[Any]) -> Finding | None:
    """A send to a person (id or address) the receiver saw bounce or complain."""
    if not _bounced or not any(is_bounced(i) for i in identifiers):
        return None
    return Finding(
        "CIO008",
        f"CIO008 {method}() to a person whose email bounced or who marked mail as spam (seen by the "
        "webhook receiver): repeated sends hurt deliverability. Suppress the person "
        "(cio.suppress(id)) or skip the send.",
    )
