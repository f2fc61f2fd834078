"""Arguments Customer.io rejects whatever the data, refused at the caller's line.

The SDK sends these and gets a 400 (or a 207 entry error) back; in background mode that answer
would reach nobody, so :func:`cioguard.operations.build.build` runs the check for the call's method
first and raises :class:`~cioguard.operations.errors.InvalidCall` naming the argument and the fix:

- an event or page name that is missing, not a string, blank, or over 100 bytes (UTF-8);
- a device platform other than ``ios`` / ``android``;
- the bare identifier ``cio_`` (a ``cio_`` prefix with no id after it).
"""

from __future__ import annotations

from collections.abc import Callable

from cioguard.operations.errors import InvalidCall
from cioguard.operations.model import Call

EVENT_NAME_LIMIT = 100
_PLATFORMS = frozenset({"ios", "android"})


def _check_name(call: Call) -> None:
    name = call.name
    what = "page" if call.method == "pageview" else "event name"
    if type(name) is not str or not name.strip():
        raise InvalidCall(
            f"{call.method}(): the {what} must be a non-empty string, got "
            f"{'an empty string' if isinstance(name, str) else type(name).__name__}; "
            "use a fixed snake_case name such as 'signed_up'"
        )
    # A character is at most 4 bytes: encode only names that could be over the limit.
    if len(name) * 4 > EVENT_NAME_LIMIT and len(name.strip().encode("utf-8")) > EVENT_NAME_LIMIT:
        raise InvalidCall(
            f"{call.method}(): the {what} is over Customer.io's {EVENT_NAME_LIMIT}-byte limit; "
            "use a short fixed name and put the details in data"
        )


def _check_identifier(call: Call) -> None:
    if isinstance(call.customer_id, str) and call.customer_id == "cio_":
        raise InvalidCall(
            f"{call.method}(): the identifier 'cio_' names no person; pass 'cio_<cio_id>', an id or an email"
        )


def _check_device(call: Call) -> None:
    _check_identifier(call)
    platform = (call.extra or {}).get("platform")
    if platform not in _PLATFORMS:
        raise InvalidCall(
            f"add_device(): platform must be 'ios' or 'android' (Customer.io accepts no other), "
            f"got {platform!r}"
        )


def _check_person(call: Call) -> None:
    # The hot path (every track): the common case is two type tests, without the two calls.
    name = call.name
    if type(name) is not str or len(name) * 4 > EVENT_NAME_LIMIT or not name.strip():
        _check_name(call)
    customer_id = call.customer_id
    if type(customer_id) is not str or customer_id == "cio_":
        _check_identifier(call)


CHECKS: dict[str, Callable[[Call], None]] = {
    "track": _check_person,
    "pageview": _check_person,
    "backfill": _check_person,
    "track_anonymous": _check_name,
    "add_device": _check_device,
    "identify": _check_identifier,
    "delete": _check_identifier,
    "suppress": _check_identifier,
    "unsuppress": _check_identifier,
    "delete_device": _check_identifier,
}
