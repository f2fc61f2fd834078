"""Bind a patched SDK method's arguments into a :class:`~cioguard.operations.model.Call`, as the SDK would.

>>> call = bind("track", ("42", "purchase"), {"data": {"plan": "pro"}})
>>> call.customer_id, call.name, call.data
('42', 'purchase', {'plan': 'pro'})
>>> bind("track", ("", "purchase"), {})
Traceback (most recent call last):
...
customerio.client_base.CustomerIOException: customer_id cannot be blank in track

``args``/``kwargs`` are what the user passed, without the client itself. Each method has a tiny
function with the SDK 3.2.0 signature (``self`` included, and the SDK's qualified name), so Python
binds the arguments and a wrong call raises exactly the ``TypeError`` the SDK method would
(``CustomerIO.track() missing 1 required positional argument: 'name'``). The SDK's own checks run
in the same order with the same ``CustomerIOException`` messages, before anything is queued.

What each :class:`Call` holds (``extra`` only where listed):

- ``track``/``track_anonymous``: ``data`` is a dict (``None``/empty → ``{}``, a mapping → a copy),
  ``event_id`` the caller's ``id``, ``timestamp`` the *raw* value (the pitfall rules look at it;
  :func:`event_timestamp` gives what the SDK would send). ``track_anonymous``: ``customer_id`` is
  ``None`` and ``extra = {"anonymous_id"}`` (blank allowed: an "invite" event without a person).
- ``pageview``: ``name`` = page, ``data`` = the keyword data. ``backfill``: ``timestamp`` raw
  (validated here like the SDK does), ``data`` = the keyword data.
- ``identify``: ``data`` = the attributes. ``delete``/``suppress``/``unsuppress``: ``customer_id``.
- ``add_device``: ``extra = {"device_id", "platform"}``, ``data`` = the extra device fields.
  ``delete_device``: ``extra = {"device_id"}``.
- ``merge_customers``: ``extra = {"primary_id_type", "primary_id", "secondary_id_type", "secondary_id"}``.
- ``batch``: ``extra = {"operations": [...]}``, each checked to be a dict with ``type`` and ``action``.
- ``send_email`` … ``send_in_app``: ``data`` = the request dict (``Send*Request._to_dict()``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from customerio import CustomerIOException
from customerio.api import (
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
)

from cioguard.operations.errors import SerializationError
from cioguard.operations.model import Call
from cioguard.operations.serialize import to_unix_seconds

__all__ = ["APP_METHODS", "TRACK_METHODS", "backfill_timestamp", "bind", "binder", "event_timestamp"]

Binder = Callable[..., Call]
_BINDERS: dict[str, Binder] = {}
_ID_TYPES = frozenset({"id", "email", "cio_id"})


def _sdk(qualname: str) -> Callable[[Binder], Binder]:
    """Register a binder under the SDK method name, wearing the SDK's qualified name."""

    def register(func: Binder) -> Binder:
        func.__qualname__ = qualname
        func.__name__ = qualname.rsplit(".", 1)[1]
        _BINDERS[func.__name__] = func
        return func

    return register


def bind(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """The :class:`Call` for ``method(*args, **kwargs)``; raises what the SDK method would raise."""
    try:
        return _BINDERS[method](None, *args, **kwargs)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:  # arguments did not bind
            from cioguard.pitfalls.legacy import legacy_type_error  # CIO015: name the 3.x spelling

            raise legacy_type_error(method, exc, bool(kwargs)) from None
        raise


def binder(method: str) -> Binder:
    """The binder for ``method``, to call as ``binder(None, *args, **kwargs)`` (skips one lookup)."""
    return _BINDERS[method]


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _event_data(data: Any) -> dict[str, Any]:
    # The SDK's ``_sanitize(data or {})``: a non-mapping raises its AttributeError, like the SDK.
    if type(data) is dict:
        return data
    if not data:
        return {}
    return dict(data.items())


def event_timestamp(raw: Any) -> int | None:
    """What the SDK's ``_build_event`` sends for ``timestamp=raw`` (``None`` = no timestamp).

    ``datetime`` → Unix seconds, ``int`` as is (milliseconds too), anything else ``int()``-ed,
    unparseable values dropped silently.
    """
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return to_unix_seconds(raw)
    if isinstance(raw, int):
        return raw
    try:
        return int(raw)
    except (ValueError, TypeError, OverflowError):
        return None


def backfill_timestamp(raw: Any) -> int:
    """``backfill``'s timestamp as the SDK sends it; the SDK's exception when it is not int-able."""
    if isinstance(raw, datetime):
        return to_unix_seconds(raw)
    if isinstance(raw, int):
        return raw
    try:
        return int(raw)
    except Exception as e:
        raise CustomerIOException(f"{raw} is not a valid timestamp ({e})") from e


# -- Track API (CustomerIO) ------------------------------------------------------------------------


@_sdk("CustomerIO.identify")
def _identify(self: Any, id: Any, **kwargs: Any) -> Call:
    if id is None or id == "":
        raise CustomerIOException("id cannot be blank in identify")
    return Call("identify", id, None, kwargs)


@_sdk("CustomerIO.track")
def _track(
    self: Any, customer_id: Any, name: Any, data: Any = None, id: Any = None, timestamp: Any = None
) -> Call:
    if customer_id is None or customer_id == "":
        raise CustomerIOException("customer_id cannot be blank in track")
    return Call("track", customer_id, name, data if type(data) is dict else _event_data(data), timestamp, id)


@_sdk("CustomerIO.track_anonymous")
def _track_anonymous(
    self: Any,
    anonymous_id: Any,
    name: Any,
    data: Any = None,
    id: Any = None,
    timestamp: Any = None,
) -> Call:
    return Call(
        "track_anonymous", None, name, _event_data(data), timestamp, id, {"anonymous_id": anonymous_id}
    )


@_sdk("CustomerIO.pageview")
def _pageview(self: Any, customer_id: Any, page: Any, **data: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in pageview")
    return Call("pageview", customer_id, page, data)


@_sdk("CustomerIO.backfill")
def _backfill(self: Any, customer_id: Any, name: Any, timestamp: Any, **data: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in backfill")
    backfill_timestamp(timestamp)  # the SDK's validation, in the SDK's order
    return Call("backfill", customer_id, name, data, timestamp)


@_sdk("CustomerIO.delete")
def _delete(self: Any, customer_id: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in delete")
    return Call("delete", customer_id)


@_sdk("CustomerIO.add_device")
def _add_device(self: Any, customer_id: Any, device_id: Any, platform: Any, **data: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in add_device")
    if _blank(device_id):
        raise CustomerIOException("device_id cannot be blank in add_device")
    if _blank(platform):
        raise CustomerIOException("platform cannot be blank in add_device")
    return Call("add_device", customer_id, data=data, extra={"device_id": device_id, "platform": platform})


@_sdk("CustomerIO.delete_device")
def _delete_device(self: Any, customer_id: Any, device_id: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in delete_device")
    if _blank(device_id):
        raise CustomerIOException("device_id cannot be blank in delete_device")
    return Call("delete_device", customer_id, extra={"device_id": device_id})


@_sdk("CustomerIO.suppress")
def _suppress(self: Any, customer_id: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in suppress")
    return Call("suppress", customer_id)


@_sdk("CustomerIO.unsuppress")
def _unsuppress(self: Any, customer_id: Any) -> Call:
    if _blank(customer_id):
        raise CustomerIOException("customer_id cannot be blank in unsuppress")
    return Call("unsuppress", customer_id)


@_sdk("CustomerIO.merge_customers")
def _merge_customers(
    self: Any, primary_id_type: Any, primary_id: Any, secondary_id_type: Any, secondary_id: Any
) -> Call:
    if primary_id_type not in _ID_TYPES:
        raise CustomerIOException("invalid primary id type")
    if secondary_id_type not in _ID_TYPES:
        raise CustomerIOException("invalid secondary id type")
    if _blank(primary_id):
        raise CustomerIOException("primary customer_id cannot be blank")
    if _blank(secondary_id):
        raise CustomerIOException("secondary customer_id cannot be blank")
    extra = {
        "primary_id_type": primary_id_type,
        "primary_id": primary_id,
        "secondary_id_type": secondary_id_type,
        "secondary_id": secondary_id,
    }
    return Call("merge_customers", primary_id, extra=extra)


@_sdk("CustomerIO.batch")
def _batch(self: Any, operations: Any) -> Call:
    if not operations:
        raise CustomerIOException("operations cannot be empty in batch")
    if not isinstance(operations, (list, tuple)):
        # The SDK would hand it to json, which fails "after 3 retries"; say what is wrong instead.
        raise SerializationError("operations", f"{type(operations).__name__} is not a list of dicts")
    for index, entry in enumerate(operations):
        # Customer.io would answer 400/207 for these; the SDK leaves it to the server.
        if not isinstance(entry, dict) or "type" not in entry or "action" not in entry:
            raise CustomerIOException(f"operations[{index}] must be a dict with 'type' and 'action' in batch")
    return Call("batch", extra={"operations": list(operations)})


# -- App API (APIClient) ---------------------------------------------------------------------------


def _app_binder(method: str, request_type: type[Any]) -> None:
    def bind_send(self: Any, request: Any) -> Call:
        if isinstance(request, request_type):
            request = request._to_dict()
        elif not isinstance(request, dict):
            # The SDK fails inside send_request with "Failed to receive valid response after 3 retries".
            raise SerializationError(
                "request", f"{type(request).__name__} is not a {request_type.__name__} or a dict"
            )
        return Call(method, data=request)

    _sdk(f"APIClient.{method}")(bind_send)


for _method, _type in (
    ("send_email", SendEmailRequest),
    ("send_push", SendPushRequest),
    ("send_sms", SendSMSRequest),
    ("send_whatsapp", SendWhatsAppRequest),
    ("send_inbox_message", SendInboxMessageRequest),
    ("send_in_app", SendInAppRequest),
):
    _app_binder(_method, _type)

#: The patched ``APIClient`` methods.
APP_METHODS = frozenset(name for name in _BINDERS if name.startswith("send_"))
#: The patched ``CustomerIO`` methods.
TRACK_METHODS = frozenset(_BINDERS) - APP_METHODS
