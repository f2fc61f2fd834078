"""Bounded label values: every metric label cioguard emits comes from one of these sets.

Recorders pass each label value through the matching ``*_label`` function; anything outside the
set becomes ``other`` (``OTHER``), so a caller bug can never put a customer id, an email, a URL or
a user-typed event name into a time series and explode cardinality::

    from cioguard.telemetry.labels import method_label, status_label

    method_label("track")            # "track"
    method_label("user@example.com") # "other"
    status_label(429)                # "429"
    status_label("timeout")          # "other" ("error" is the value for transport failures)
    status_class_label(503)          # "5xx" (429 stays "429": it is flow control, not a fault)
    error_type_label("timeout")      # "timeout"

The sets are public so the delivery engine, the webhook receiver and the tests can use the same
names the dashboard and the alert rules rely on.
"""

from __future__ import annotations

import re

#: The value any unexpected label becomes.
OTHER = "other"

#: SDK methods (``customerio.CustomerIO`` and ``customerio.APIClient``) plus ``send_request``.
METHODS: frozenset[str] = frozenset(
    {
        "identify",
        "track",
        "track_anonymous",
        "pageview",
        "backfill",
        "delete",
        "add_device",
        "delete_device",
        "suppress",
        "unsuppress",
        "merge_customers",
        "batch",
        "send_email",
        "send_push",
        "send_sms",
        "send_whatsapp",
        "send_inbox_message",
        "send_in_app",
        "send_request",
    }
)

#: How a call was handled: returned at once (``background``) or synchronously.
MODES: frozenset[str] = frozenset({"background", "blocking", "synchronous"})

#: HTTP endpoint kinds the sender talks to (``v2_batch`` carries most Track traffic).
ENDPOINTS: frozenset[str] = frozenset(
    {
        "v2_batch",
        "v2_entity",
        "v1_identify",
        "v1_track",
        "v1_track_anonymous",
        "v1_events",
        "v1_pageview",
        "v1_delete",
        "v1_add_device",
        "v1_delete_device",
        "v1_suppress",
        "v1_unsuppress",
        "v1_merge",
        "v1_merge_customers",
        "v1_region",
        "app_other",
        "app_send_email",
        "app_send_push",
        "app_send_sms",
        "app_send_whatsapp",
        "app_send_inbox_message",
        "app_send_in_app",
        # customerio_endpoint_outage{endpoint}: the engine's outage mode is per workspace endpoint,
        # labelled by the API it serves (cioguard.operations.endpoints: "track" / "app")
        "track",
        "app",
    }
)

#: Why operations were lost (``customerio_events_dropped_total{reason}``).
DROP_REASONS: frozenset[str] = frozenset(
    {"queue_full", "shutdown", "rejected", "expired", "oversize", "spool_error"}
)

#: Why the durable spool failed (``customerio_spool_errors_total{kind}``).
SPOOL_ERROR_KINDS: frozenset[str] = frozenset(
    {"disk_full", "read_only", "corrupt", "deleted", "locked", "other"}
)

#: Why a request was retried (``customerio_retries_total{reason}``).
RETRY_REASONS: frozenset[str] = frozenset({"status_429", "status_5xx", "status_408", "timeout", "connection"})

#: Customer.io reporting-webhook metrics (email, push, SMS, in-app and customer events).
WEBHOOK_METRICS: frozenset[str] = frozenset(
    {
        "drafted",
        "attempted",
        "sent",
        "delivered",
        "opened",
        "clicked",
        "human_clicked",
        "machine_clicked",
        "converted",
        "unsubscribed",
        "bounced",
        "dropped",
        "spammed",
        "failed",
        "undeliverable",
        "subscribed",
        "cio_subscription_preferences_changed",
    }
)

#: Why the webhook receiver refused a request (``customerio_webhook_rejected_total{reason}``).
WEBHOOK_REJECT_REASONS: frozenset[str] = frozenset(
    {
        "signature",
        "missing_signature",
        "timestamp",
        "stale",
        "malformed",
        "oversize",
        "length_required",
        "method",
        "content_type",
        "duplicate",
        "timeout",
    }
)

_PITFALL_CODE = re.compile(r"CIO\d{3}\Z")
#: Every HTTP status code (100-599) as a string, plus ``error`` for transport failures.
STATUS_CODES: frozenset[str] = frozenset({str(code) for code in range(100, 600)} | {"error"})

#: ``customerio_requests_total{status_code}`` in Prometheus: the class, ``429`` on its own (rate
#: limiting is flow control, not a failure) and ``error`` when no response arrived.
STATUS_CLASSES: frozenset[str] = frozenset({"1xx", "2xx", "3xx", "4xx", "429", "5xx", "error"})

#: Why no response arrived (``customerio_requests_total{status_code="error", error_type}``);
#: requests that got a response carry ``error_type=""`` (Prometheus treats it as no label).
ERROR_TYPES: frozenset[str] = frozenset({"timeout", "connection", "tls", "other"})


def _in(allowed: frozenset[str], value: object) -> str:
    # Invariant: the result is always a member of ``allowed`` or OTHER (never the raw input).
    if isinstance(value, str) and value in allowed:
        return value
    return OTHER


def method_label(value: object) -> str:
    return _in(METHODS, value)


def mode_label(value: object) -> str:
    return _in(MODES, value)


def endpoint_label(value: object) -> str:
    return _in(ENDPOINTS, value)


def drop_reason_label(value: object) -> str:
    return _in(DROP_REASONS, value)


def retry_reason_label(value: object) -> str:
    return _in(RETRY_REASONS, value)


def spool_error_label(value: object) -> str:
    return _in(SPOOL_ERROR_KINDS, value)


def webhook_metric_label(value: object) -> str:
    return _in(WEBHOOK_METRICS, value)


def webhook_reason_label(value: object) -> str:
    return _in(WEBHOOK_REJECT_REASONS, value)


def status_label(value: object) -> str:
    """``429`` or ``"429"`` → ``"429"``; ``"error"`` stays; anything else → ``other``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _in(STATUS_CODES, value)


def status_class_label(value: object) -> str:
    """``200``/``"207"`` → ``"2xx"``, ``429`` → ``"429"``, ``"error"`` stays; anything else → ``other``."""
    code = status_label(value)
    if code in ("429", "error", OTHER):
        return code
    return code[0] + "xx"


def error_type_label(value: object) -> str:
    """A transport failure kind from :data:`ERROR_TYPES`; anything else (``None`` too) → ``other``."""
    return _in(ERROR_TYPES, value)


_TLS = frozenset({"SSLError", "SSLCertVerificationError", "CertificateError"})
_TIMEOUT = frozenset({"Timeout", "TimeoutError", "ReadTimeoutError", "ConnectTimeoutError"})
_CONNECTION = frozenset({"ConnectionError", "ProtocolError", "NewConnectionError", "RemoteDisconnected"})


def transport_error_type(exc: BaseException | None) -> str:
    """Why no response arrived, from an exception chain (``requests``/``urllib3``/stdlib class
    names, so this module imports none of them): ``tls``, ``timeout``, ``connection`` or ``other``.

    The SDK wraps transport failures in ``CustomerIOException`` (``raise … from e``), so causes are
    followed, a few levels deep at most.
    """
    for _ in range(5):
        if exc is None:
            break
        names = {cls.__name__ for cls in type(exc).__mro__}
        # Order matters: requests' SSLError and ConnectTimeout are also ConnectionErrors.
        for kind, known in (("tls", _TLS), ("timeout", _TIMEOUT), ("connection", _CONNECTION)):
            if names & known:
                return kind
        exc = exc.__cause__ or exc.__context__
    return OTHER


def pitfall_label(value: object) -> str:
    """A pitfall code (``CIO001`` … ``CIO999``), or ``other``."""
    if isinstance(value, str) and _PITFALL_CODE.match(value):
        return value
    return OTHER
