"""Generate ``dashboards/cioguard.json``, the Grafana dashboard for cioguard's metrics.

Edit this file, not the JSON, then run::

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

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'job=~"$job", instance=~"$instance"'
RI = "$__rate_interval"

Panel = dict[str, Any]


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "refId": ref,
    }


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def timeseries(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    unit: str,
    steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
    stack: bool = False,
    threshold_style: str = "off",
) -> Panel:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "color": {"mode": "palette-classic"},
                "thresholds": thresholds(*steps),
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": False,
                    "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                    "thresholdsStyle": {"mode": threshold_style},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def stat(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    unit: str,
    steps: tuple[tuple[float | None, str], ...],
    kind: str = "stat",
) -> Panel:
    panel = timeseries(title, description, targets, unit, steps)
    panel["type"] = kind
    panel["fieldConfig"]["defaults"] = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "thresholds"},
        "thresholds": thresholds(*steps),
        "noValue": "0",
    }
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "textMode": "auto",
        "justifyMode": "auto",
        "orientation": "auto",
    }
    if kind == "gauge":
        panel["fieldConfig"]["defaults"]["max"] = 1
        panel["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showThresholdMarkers": True,
            "showThresholdLabels": False,
        }
    return panel


def quantiles(metric: str, by: str, qs: tuple[float, ...], legend: str) -> list[tuple[str, str]]:
    inner = f"sum by (le{', ' + by if by else ''}) (rate({metric}_bucket{{{SEL}}}[{RI}]))"
    label = f" {legend}" if legend else ""
    return [(f"histogram_quantile({q}, {inner})", f"p{round(q * 100)}{label}") for q in qs]


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def rate(metric: str, by: str = "", extra: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum"
    selector = SEL + (f", {extra}" if extra else "")
    return f"{grouping}(rate({metric}{{{selector}}}[{RI}]))"


def webhook_ratio(metric: str) -> str:
    def part(name: str) -> str:
        return f'sum(rate(customerio_webhook_events_total{{job=~"$job", metric="{name}"}}[{RI}]))'

    return f"{part(metric)} / {part('sent')}"


GREEN: tuple[float | None, str] = (None, "green")

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
        "call, CIO011 rate limit …). Counted even when the Python warning is shown only once.",
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


def layout(panels: list[Panel]) -> list[Panel]:
    """Assign ids and grid positions: rows full width, other panels three per line (8 wide)."""
    x = y = 0
    for index, panel in enumerate(panels, start=1):
        panel["id"] = index
        if panel["type"] == "row":
            if x:
                x, y = 0, y + 8
            panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
            continue
        panel["gridPos"] = {"h": 8, "w": 8, "x": x, "y": y}
        x += 8
        if x >= 24:
            x, y = 0, y + 8
    return panels


def variable(name: str, label: str, query: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "description": description,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def dashboard() -> dict[str, Any]:
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "description": "The Prometheus that scrapes your application's /metrics",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            # schemaVersion 39 is what Grafana 10.3 and later write and read.
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.3.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "gauge", "name": "Gauge", "version": ""},
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "title": "cioguard: Customer.io delivery",
        "description": "What Customer.io calls cost your application, whether delivery is healthy "
        "(stalled sender, outage mode, expired drops, spool errors, fallbacks), how it is going "
        "(latency, 429s, retries, queue, lag, drops) and email health from reporting webhooks. "
        "Metrics from the cioguard Python library.",
        "uid": "cioguard-customerio",
        "tags": ["cioguard", "customer.io"],
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "liveNow": False,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "version": 1,
        "weekStart": "",
        "templating": {
            "list": [
                # Lets file provisioning (which ignores __inputs) resolve ${DS_PROMETHEUS} too.
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"selected": False, "text": "default", "value": "default"},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                },
                variable(
                    "job",
                    "Job",
                    "label_values(customerio_calls_total, job)",
                    "Prometheus job of the application(s) using cioguard",
                ),
                variable(
                    "instance",
                    "Instance",
                    'label_values(customerio_calls_total{job=~"$job"}, instance)',
                    "Scraped instance (one process, or one multiprocess server)",
                ),
            ]
        },
        "panels": layout(PANELS),
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n")
