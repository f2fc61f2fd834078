"""Label values are bounded: anything unexpected becomes ``other``."""

from __future__ import annotations

import pytest

from cioguard.telemetry import labels


@pytest.mark.parametrize(
    ("func", "good", "bad"),
    [
        (labels.method_label, "track", "user@example.com"),
        (labels.mode_label, "background", "turbo"),
        (labels.endpoint_label, "v2_batch", "https://track.customer.io/api/v2/batch"),
        (labels.drop_reason_label, "queue_full", "because"),
        (labels.retry_reason_label, "status_429", "429"),
        (labels.webhook_metric_label, "bounced", "signed_up_42"),
        (labels.webhook_reason_label, "signature", "x" * 200),
        (labels.pitfall_label, "CIO011", "CIO0111"),
        (labels.status_label, "207", "2000"),
        (labels.error_type_label, "timeout", "ECONNRESET"),
    ],
)
def test_known_values_pass_and_others_become_other(func: object, good: str, bad: str) -> None:
    assert callable(func)
    assert func(good) == good
    assert func(bad) == labels.OTHER
    assert func(None) == labels.OTHER
    assert func(123456) == labels.OTHER


def test_status_codes_accept_ints_and_error() -> None:
    assert labels.status_label(429) == "429"
    assert labels.status_label("error") == "error"
    assert labels.status_label(True) == labels.OTHER
    assert labels.status_label(99) == labels.OTHER
    assert labels.status_label(600) == labels.OTHER


@pytest.mark.parametrize(
    ("code", "label"),
    [(200, "2xx"), ("207", "2xx"), (302, "3xx"), (400, "4xx"), ("401", "4xx"), (429, "429"), ("429", "429"),
     (500, "5xx"), (503, "5xx"), (101, "1xx"), ("error", "error"), ("timeout", "other"), (600, "other"),
     (True, "other")],
)  # fmt: skip
def test_status_classes_keep_429_apart(code: object, label: str) -> None:
    assert labels.status_class_label(code) == label
    assert label in labels.STATUS_CLASSES | {labels.OTHER}


def test_error_types_cover_what_the_transport_reports() -> None:
    # cioguard.delivery.transport.TransportError.kind is "timeout" or "connection".
    assert {"timeout", "connection"} <= labels.ERROR_TYPES
    assert labels.error_type_label(None) == labels.OTHER


def test_sets_are_disjoint_from_other() -> None:
    for values in (labels.METHODS, labels.ENDPOINTS, labels.DROP_REASONS, labels.RETRY_REASONS):
        assert labels.OTHER not in values


def test_label_sets_cover_the_names_other_modules_emit() -> None:
    # The delivery engine, the instrumentation and the webhook receiver produce these names; if one
    # of them adds a name the bounded sets do not know, it would silently be counted as "other".
    from cioguard.delivery.counters import DROP_REASONS
    from cioguard.endpoints import ENDPOINT_NAMES
    from cioguard.webhooks import KNOWN_METRICS

    assert set(ENDPOINT_NAMES) - {labels.OTHER} <= labels.ENDPOINTS
    # the outage gauge is labelled with the Endpoint's label (what stats()["outage"] lists)
    from cioguard.operations.endpoints import app_endpoint, track_endpoint

    for endpoint in (
        track_endpoint("s", "k", "https://track.customer.io"),
        app_endpoint("k", "api.customer.io"),
    ):
        assert labels.endpoint_label(endpoint.label) == endpoint.label
    assert set(DROP_REASONS) == labels.DROP_REASONS
    assert set(KNOWN_METRICS) <= labels.WEBHOOK_METRICS


def test_transport_error_type_follows_the_sdks_exception_chain() -> None:
    import requests
    from customerio import CustomerIOException

    def wrapped(cause: BaseException) -> CustomerIOException:
        try:
            try:
                raise cause
            except Exception as exc:
                raise CustomerIOException("Failed to receive valid response") from exc
        except CustomerIOException as outer:
            return outer

    assert labels.transport_error_type(wrapped(requests.exceptions.ReadTimeout())) == "timeout"
    assert labels.transport_error_type(wrapped(requests.exceptions.ConnectTimeout())) == "timeout"
    assert labels.transport_error_type(wrapped(requests.exceptions.SSLError())) == "tls"
    assert labels.transport_error_type(wrapped(requests.exceptions.ConnectionError())) == "connection"
    assert labels.transport_error_type(wrapped(ConnectionResetError())) == "connection"
    assert labels.transport_error_type(wrapped(ValueError())) == labels.OTHER
    assert labels.transport_error_type(None) == labels.OTHER
