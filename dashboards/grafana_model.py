"""Grafana dashboard model helpers for ``build_dashboard.py``: panels, queries, layout, envelope.

Plain functions that return the JSON Grafana's classic dashboard model expects (schemaVersion 39,
Grafana 10.3+), so the panel list in ``build_dashboard.py`` reads as a list of what to show::

    from grafana_model import SEL, rate, timeseries
    timeseries("Calls / s", "…", [(rate("customerio_calls_total", "method"), "{{method}}")], "ops")

Every query selects ``job=~"$job", instance=~"$instance"`` (``SEL``) and rates over
``$__rate_interval`` (``RI``); the data source is the ``DS_PROMETHEUS`` import input.
"""

from __future__ import annotations

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


def envelope(title: str, description: str, uid: str, panels: list[Panel]) -> dict[str, Any]:
    """The whole dashboard: import inputs, requirements, variables and ``panels`` laid out."""
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
        "title": title,
        "description": description,
        "uid": uid,
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
        "panels": layout(panels),
    }
