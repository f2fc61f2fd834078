"""Generate ``dashboards/cioguard.json``, the Grafana dashboard for cioguard's metrics.

Edit this file (what to show) or ``grafana_model.py`` (how panels are built), not the JSON,
then run::

    .venv/bin/python dashboards/build_dashboard.py > dashboards/cioguard.json

``tests/prometheus/test_dashboard_files.py`` fails when the two drift apart, validates the JSON
against Grafana's schema (``dashboards/schema/``) and checks every query reads only metrics of the
README's metrics table; ``tests/prometheus/test_real_prometheus.py`` runs every query against a
real Prometheus scraping an instrumented app.

Import it in Grafana (Dashboards → New → Import): it asks for the Prometheus data source
(``DS_PROMETHEUS``). ``$job``/``$instance`` select the scraped application.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from grafana_model import (
    GREEN,
    RI,
    SEL,
    Panel,
    envelope,
    quantiles,
    rate,
    row,
    stat,
    timeseries,
    webhook_ratio,
)

PANELS: list[Panel] = [
    row("Your application: what Customer.io calls cost the caller"),
    timeseries(
        "Customer.io calls / s by method and mode",
        "Patched SDK calls per second. mode=background calls return at once and are delivered by "
        "the sender thread; mode=blocking calls wait for Customer.io.",
        [(rate("customerio_calls_total", "method, mode"), "{{method}} ({{mode}})")],
        "ops",
        stack=True,
    ),
    timeseries(
        "Caller time p50 / p99",
        "How long a Customer.io call takes for the code that makes it. Background calls (µs "
        "resolution, all methods) should stay in microseconds; blocking calls (coarse buckets, by "
        "mode) wait for the network.",
        [
            *quantiles("customerio_background_call_duration_seconds", "", (0.5, 0.99), "background"),
            *quantiles("customerio_call_duration_seconds", "mode", (0.99,), "{{mode}} (coarse)"),
        ],
        "s",
    ),
    timeseries(
        "Time web requests spent blocked on Customer.io",
        "Per web request (seen by cioguard's ASGI/WSGI middleware): time spent inside blocking "
        "Customer.io calls. Anything above a few ms is latency your users feel (pitfall CIO007).",
        [
            *quantiles("customerio_http_request_blocked_seconds", "", (0.5, 0.99), ""),
            (
                f"sum(rate(customerio_http_request_blocked_seconds_sum{{{SEL}}}[{RI}])) / "
                f"sum(rate(customerio_http_request_blocked_seconds_count{{{SEL}}}[{RI}]))",
                "mean",
            ),
        ],
        "s",
        steps=(GREEN, (0.05, "orange"), (0.25, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Pitfalls / s by code",
        "Pitfall rules that fired (CIO001 wrong key, CIO002 millisecond timestamps, CIO007 blocking "
        "call, CIO011 rate limit, CIO015 customerio 1.x/2.x call rejected by 3.x: events lost …). "
        "Counted every time, even when the Python warning is shown only once per line.",
        [(rate("customerio_pitfalls_total", "code"), "{{code}}")],
        "ops",
        stack=True,
    ),
    row("Delivery health: what the alerts watch"),
    timeseries(
        "Seconds since the last delivery",
        "Per instance: time since Customer.io last acknowledged an operation (instances that never "
        "delivered are left out). The stalled series shows it only while operations are waiting "
        "(queue or spool): that is the CustomerIOSenderStalled condition (above 300 s for 5 min).",
        [
            (
                "time() - max by (instance) (customerio_last_delivery_timestamp_seconds{" + SEL + "} > 0)",
                "{{instance}}",
            ),
            (
                "(time() - max by (instance) (customerio_last_delivery_timestamp_seconds{" + SEL + "}))"
                " and on (instance) (sum by (instance) (customerio_queue_size{" + SEL + "}) > 0"
                " or sum by (instance) (customerio_spool_operations{" + SEL + "}) > 0)",
                "stalled {{instance}}",
            ),
        ],
        "s",
        steps=(GREEN, (60.0, "orange"), (300.0, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Outage mode by endpoint",
        "1 while cioguard treats a Customer.io endpoint as down (one probe at a time, everything "
        "else held). Held operations expire after delivery_timeout unless spool_path is set "
        "(alert CustomerIOEndpointOutage after 5 min).",
        [
            (
                "max by (instance, endpoint) (customerio_endpoint_outage{" + SEL + "})",
                "{{instance}} {{endpoint}}",
            )
        ],
        "short",
        steps=(GREEN, (1.0, "red")),
        threshold_style="area",
    ),
    timeseries(
        "Expired operations / s",
        "Operations dropped because they kept failing for delivery_timeout (600 s by default): "
        "Customer.io or the network was down too long. Sustained, this pages (CustomerIOEventsDropping).",
        [(rate("customerio_events_dropped_total", "instance", 'reason="expired"'), "{{instance}}")],
        "ops",
        steps=(GREEN, (0.0001, "red")),
        threshold_style="area",
    ),
    timeseries(
        "Spool errors / s by kind",
        "Failures of the durable SQLite spool (spool_path): disk_full, read_only, corrupt, deleted, "
        "locked, other. While it fails, operations are not kept across restarts (alert "
        "CustomerIOSpoolErrors).",
        [(rate("customerio_spool_errors_total", "kind"), "{{kind}}")],
        "ops",
        stack=True,
    ),
    timeseries(
        "Fallbacks to the blocking SDK / s by method",
        "Calls cioguard handed to the unpatched SDK after an internal error: they still reach "
        "Customer.io, but block the caller. Any fallback is a cioguard bug worth reporting (the "
        "cioguard log has the error). No series until the first fallback.",
        [(rate("customerio_fallback_total", "method"), "{{method}}")],
        "ops",
        stack=True,
    ),
    row("Delivery to Customer.io"),
    timeseries(
        "HTTP latency p50 / p95 / p99 by endpoint",
        "Duration of each HTTP request to Customer.io (v2_batch carries most Track traffic).",
        quantiles("customerio_request_duration_seconds", "endpoint", (0.5, 0.95, 0.99), "{{endpoint}}"),
        "s",
        steps=(GREEN, (1.0, "orange"), (5.0, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Requests / s by status code",
        "HTTP requests sent, by status class (429 on its own). error = no response, by error_type "
        "(timeout, connection, tls).",
        [(rate("customerio_requests_total", "status_code, error_type"), "{{status_code}} {{error_type}}")],
        "reqps",
        stack=True,
    ),
    timeseries(
        "429 Too Many Requests / s",
        "Rate-limited responses. cioguard waits for Retry-After and retries; a sustained rate means "
        "the workspace limit is too low for your traffic (alert CustomerIORateLimited).",
        [(rate("customerio_rate_limited_total", "endpoint"), "{{endpoint}}")],
        "reqps",
        steps=(GREEN, (0.05, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Retries / s by reason",
        "Requests retried with backoff: status_429, status_5xx, status_408, timeout, connection.",
        [(rate("customerio_retries_total", "reason"), "{{reason}}")],
        "reqps",
        stack=True,
    ),
    timeseries(
        "Request error ratio",
        "Share of requests that did not succeed (not 2xx, 429 excluded: it has its own panel). "
        "The alert CustomerIORequestErrors fires above 5 % with at least 20 requests per 5 minutes.",
        [
            (
                rate("customerio_requests_total", extra='status_code!~"2xx|429"')
                + " / "
                + rate("customerio_requests_total"),
                "errors",
            )
        ],
        "percentunit",
        steps=(GREEN, (0.01, "orange"), (0.05, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Operations enqueued vs delivered / s",
        "Accepted onto the queue vs acknowledged by Customer.io. A persistent gap means the queue grows.",
        [
            (rate("customerio_events_enqueued_total"), "enqueued"),
            (rate("customerio_events_delivered_total"), "delivered"),
        ],
        "ops",
    ),
    row("Queue, lag and losses"),
    timeseries(
        "Queue size vs capacity",
        "Operations waiting (queued or in flight) against max_queue_size, per instance. When the "
        "queue is full, new operations are dropped (reason queue_full) or block, per `overflow`.",
        [
            ("sum by (instance) (customerio_queue_size{" + SEL + "})", "size {{instance}}"),
            ("sum by (instance) (customerio_queue_capacity{" + SEL + "})", "capacity {{instance}}"),
        ],
        "short",
    ),
    stat(
        "Queue fill (fullest instance)",
        "Queue size / capacity of the fullest instance. Above 80 % the alert "
        "CustomerIOQueueNearlyFull fires.",
        [
            (
                "max(sum by (job, instance) (customerio_queue_size{" + SEL + "}) / "
                "sum by (job, instance) (customerio_queue_capacity{" + SEL + "}))",
                "fill",
            )
        ],
        "percentunit",
        (GREEN, (0.5, "orange"), (0.8, "red")),
        kind="gauge",
    ),
    stat(
        "Operations dropped in range, by reason",
        "Accepted operations that were lost: expired (failed for delivery_timeout), queue_full, "
        "rejected (4xx), spool_error, oversize, shutdown. Anything above 0 is data that never "
        "reached Customer.io — red.",
        [(f"sum by (reason) (increase(customerio_events_dropped_total{{{SEL}}}[$__range]))", "{{reason}}")],
        "short",
        (GREEN, (0.001, "red")),
    ),
    timeseries(
        "Delivery lag p50 / p99",
        "Time from enqueue to acknowledgement by Customer.io. Normally about flush_interval; it grows "
        "during retries and rate limiting (alert CustomerIODeliveryLagHigh above 60 s).",
        quantiles("customerio_delivery_lag_seconds", "", (0.5, 0.99), ""),
        "s",
        steps=(GREEN, (60.0, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Operations per batch request",
        "How many operations each HTTP request carried (v2 batches). Low numbers under load mean "
        "small flush intervals or many single-route operations.",
        [
            *quantiles("customerio_batch_operations", "", (0.5, 0.99), ""),
            (
                f"sum(rate(customerio_batch_operations_sum{{{SEL}}}[{RI}])) / "
                f"sum(rate(customerio_batch_operations_count{{{SEL}}}[{RI}]))",
                "mean",
            ),
        ],
        "short",
    ),
    timeseries(
        "Durable spool",
        "Operations held in the SQLite spool (spool_path), waiting to be delivered after a restart.",
        [("sum by (instance) (customerio_spool_operations{" + SEL + "})", "{{instance}}")],
        "short",
    ),
    row("Email health (reporting webhooks)"),
    timeseries(
        "Webhook events / s by metric",
        "Verified Customer.io reporting-webhook events received by cioguard.webhooks, by metric.",
        [(rate("customerio_webhook_events_total", "metric"), "{{metric}}")],
        "ops",
        stack=True,
    ),
    timeseries(
        "Bounce and complaint rate",
        "bounced / sent and spammed (complaints) / sent, from webhook events. Mailbox providers start "
        "throttling above ~2 % bounces and ~0.1 % complaints; the alert fires at 5 % bounces.",
        [(webhook_ratio("bounced"), "bounce rate"), (webhook_ratio("spammed"), "complaint rate")],
        "percentunit",
        steps=(GREEN, (0.02, "orange"), (0.05, "red")),
        threshold_style="line",
    ),
    timeseries(
        "Webhook requests rejected / s by reason",
        "Webhook requests refused (bad signature, stale timestamp, malformed, oversize …). A steady "
        "rate of signature failures usually means a wrong signing key.",
        [(rate("customerio_webhook_rejected_total", "reason"), "{{reason}}")],
        "reqps",
        stack=True,
    ),
]


def dashboard() -> dict[str, Any]:
    return envelope(
        title="cioguard: Customer.io delivery",
        description="What Customer.io calls cost your application, whether delivery is healthy "
        "(stalled sender, outage mode, expired drops, spool errors, fallbacks), how it is going "
        "(latency, 429s, retries, queue, lag, drops) and email health from reporting webhooks. "
        "Metrics from the cioguard Python library.",
        uid="cioguard-customerio",
        panels=PANELS,
    )


if __name__ == "__main__":
    sys.stdout.write(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n")
