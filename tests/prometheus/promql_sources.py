"""Every PromQL expression cioguard ships: dashboard panels, template variables and alert rules.

Used by the static tests (parse with promtool, names from the README's metrics table) and by the
real-Prometheus test (run each through the HTTP API). Grafana template variables are substituted
with :func:`substitute` before an expression reaches Prometheus.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DASHBOARD = DASHBOARDS / "cioguard.json"
ALERTS = DASHBOARDS / "alerts.yml"
ALERT_TESTS = DASHBOARDS / "alerts_test.yml"
SCHEMA = DASHBOARDS / "schema" / "grafana-dashboard.schema.json"

#: What the real-Prometheus test substitutes for Grafana's variables.
DEFAULT_VARIABLES = {
    "job": ".*",
    "instance": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}

_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class Expression:
    source: str  # "panel", "variable" or "alert"
    title: str  # panel title + legend, variable name or alert name
    expr: str


def load_dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions(dashboard: dict[str, Any] | None = None) -> list[Expression]:
    dashboard = load_dashboard() if dashboard is None else dashboard
    found: list[Expression] = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            found.append(
                Expression("panel", f"{panel['title']} [{target.get('legendFormat', '')}]", target["expr"])
            )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":  # picks a data source; runs no PromQL
            continue
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text or "")
        assert match, (
            f"variable {variable['name']}: only label_values(selector, label) is supported: {text!r}"
        )
        # label_values(sel, label) is Grafana's; the PromQL it runs is the series selector itself.
        found.append(
            Expression("variable", variable["name"], f"count by ({match['label']}) ({match['selector']})")
        )
    return found


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_expressions() -> list[Expression]:
    return [Expression("alert", rule["alert"], rule["expr"]) for rule in alert_rules()]


def substitute(expr: str, variables: dict[str, str] | None = None) -> str:
    """Replace ``$name`` / ``${name}`` Grafana variables; unknown variables are an error."""
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """Metric names (``customerio_*``) an expression reads."""
    return set(re.findall(r"\b(customerio_[a-z_]+)\b", expr))
