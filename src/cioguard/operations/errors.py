"""Errors raised while turning an SDK call into operations.

- :class:`SerializationError` — the call's data holds something Customer.io cannot receive
  (``Decimal``, ``set``, ``bytes``, ``date``, ``UUID``, ``inf``, a non-string key …). It is a
  ``TypeError`` (what ``json`` raises for such values) *and* the SDK's ``CustomerIOException`` (what
  the SDK itself raises, wrapped in "Failed to receive valid response after 3 retries"), so existing
  ``except`` clauses of either kind keep working. The message names the place, never the value::

      data["items"][2]["price"]: Decimal is not JSON-serialisable by Customer.io; convert it to float or str

- :class:`InvalidCall` — an argument Customer.io rejects whatever the data (an event name that is
  missing, not a string or over 100 bytes; a device platform other than ``ios``/``android``; a
  ``cio_`` identifier with nothing after the prefix). A ``ValueError`` and a ``CustomerIOException``.
  The SDK would send these and get a 400/207 back; in background mode that answer would come too
  late for the caller, so they are refused at the caller's line.
- :class:`OperationTooLarge` — the payload is over Customer.io's documented limits even for the v1
  request (event data > 100 000 bytes, request > 500 KB). The instrumentation drops the call
  (``customerio_events_dropped_total{reason="oversize"}``) and warns CIO014.
"""

from __future__ import annotations

from customerio import CustomerIOException


class SerializationError(TypeError, CustomerIOException):  # type: ignore[misc]
    """The call's data cannot be sent as JSON; ``path`` names where (``data["a"][0]``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class OperationTooLarge(ValueError):
    """A payload over Customer.io's size limits (see the module docstring); no value is echoed."""

    def __init__(self, method: str, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{method}: {what} is {size} bytes, over Customer.io's limit of {limit} bytes; "
            "the call was not sent"
        )
        self.method = method
        self.what = what
        self.size = size
        self.limit = limit


class InvalidCall(ValueError, CustomerIOException):  # type: ignore[misc]
    """An argument Customer.io rejects (see the module docstring); the message names it and the fix."""
