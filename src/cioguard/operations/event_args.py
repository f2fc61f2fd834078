"""The arguments of an event call as a plain tuple, for the caller's fast path.

:func:`cioguard.operations.calls.bind` gives a :class:`~cioguard.operations.model.Call`; the fast
path (:mod:`cioguard.instrumentation.express`) needs only the values, so these binders return
``(customer_id, name, data, timestamp, event_id)`` — the fields of ``Call`` after ``method``, in
its order — with the same checks as the SDK, in the SDK's order::

    customer_id, name, data, timestamp, event_id = EVENT_ARGS["track"]("42", "purchase", data={...})

A ``TypeError`` from binding means "ask :func:`~cioguard.operations.calls.bind`": it raises the
SDK's own message (or CIO015's for the 1.x/2.x spelling). Blank ids raise the SDK's
``CustomerIOException`` here, as ``bind`` would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from customerio import CustomerIOException

from cioguard.operations.calls import _event_data, backfill_timestamp

__all__ = ["EVENT_ARGS", "EventArgs"]

EventArgs = tuple[Any, Any, dict[str, Any], Any, Any]


def _track(customer_id: Any, name: Any, data: Any = None, id: Any = None, timestamp: Any = None) -> EventArgs:
    if customer_id is None or customer_id == "":
        raise CustomerIOException("customer_id cannot be blank in track")
    return customer_id, name, data if type(data) is dict else _event_data(data), timestamp, id


def _pageview(customer_id: Any, page: Any, **data: Any) -> EventArgs:
    if customer_id is None or customer_id == "":
        raise CustomerIOException("customer_id cannot be blank in pageview")
    return customer_id, page, data, None, None


def _backfill(customer_id: Any, name: Any, timestamp: Any, **data: Any) -> EventArgs:
    if customer_id is None or customer_id == "":
        raise CustomerIOException("customer_id cannot be blank in backfill")
    backfill_timestamp(timestamp)  # the SDK's validation, in the SDK's order
    return customer_id, name, data, timestamp, None


#: Method name → its argument binder (``track``, ``pageview``, ``backfill``).
EVENT_ARGS: dict[str, Callable[..., EventArgs]] = {
    "track": _track,
    "pageview": _pageview,
    "backfill": _backfill,
}
