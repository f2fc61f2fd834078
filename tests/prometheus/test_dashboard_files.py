"""Static checks of dashboards/: generator in sync, Grafana schema, metric names, promtool check + test,
alert hygiene (for:, severities, volume guards, runbook_url anchors in docs/runbooks.md)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from promql_sources import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARDS,
    ROOT,
    SCHEMA,
    alert_expressions,
    alert_rules,
    dashboard_expressions,
    load_dashboard,
    metric_names,
    panels,
    substitute,
)

#: The README's metric names as exposed (counters with _total; histograms read via their series).
README_SERIES = {
    "customerio_calls_total",
    "customerio_call_duration_seconds",
    "customerio_background_call_duration_seconds",
    "customerio_last_delivery_timestamp_seconds",
    "customerio_endpoint_outage",
    "customerio_fallback_total",
    "customerio_spool_errors_total",
    "customerio_requests_total",
    "customerio_request_duration_seconds",
    "customerio_rate_limited_total",
    "customerio_retries_total",
    "customerio_events_enqueued_total",
    "customerio_events_delivered_total",
    "customerio_events_dropped_total",
    "customerio_queue_size",
    "customerio_queue_capacity",
    "customerio_delivery_lag_seconds",
    "customerio_batch_operations",
    "customerio_pitfalls_total",
    "customerio_spool_operations",
    "customerio_http_request_blocked_seconds",
    "customerio_webhook_events_total",
    "customerio_webhook_rejected_total",
}
HISTOGRAMS = {
    "customerio_call_duration_seconds",
    "customerio_background_call_duration_seconds",
    "customerio_request_duration_seconds",
    "customerio_delivery_lag_seconds",
    "customerio_batch_operations",
    "customerio_http_request_blocked_seconds",
}
ALLOWED = README_SERIES | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make system-deps` (Debian package prometheus)")
    return path


def test_dashboard_json_is_the_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboard", DASHBOARDS / "build_dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dashboard() == load_dashboard(), (
        "run: python dashboards/build_dashboard.py > dashboards/cioguard.json"
    )


def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _model(dashboard: dict[str, Any]) -> dict[str, Any]:
    # __inputs/__requires belong to Grafana's export envelope, not to the dashboard model.
    return {key: value for key, value in dashboard.items() if not key.startswith("__")}


def test_dashboard_matches_grafanas_schema() -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in _validator().iter_errors(_model(load_dashboard()))
    ]
    assert errors == []


def test_the_schema_rejects_a_broken_dashboard() -> None:
    broken = copy.deepcopy(_model(load_dashboard()))
    broken["panels"][1]["gridPos"]["w"] = "wide"
    assert not _validator().is_valid(broken)
    del broken["schemaVersion"]
    broken["panels"][1]["gridPos"]["w"] = 8
    assert not _validator().is_valid(broken)


def test_datasource_input_and_template_variables() -> None:
    dashboard = load_dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    variables = dashboard["templating"]["list"]
    assert [v["name"] for v in variables] == ["DS_PROMETHEUS", "job", "instance"]
    # A datasource variable named like the input, so file provisioning resolves ${DS_PROMETHEUS} too.
    assert variables[0]["type"] == "datasource"
    assert variables[0]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["description"], panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"], (panel["title"], target["expr"])
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("words", "unit"),
    [
        (("calls", "method and mode"), "ops"),
        (("caller time", "p99"), "s"),
        (("http latency", "p95", "endpoint"), "s"),
        (("429",), "reqps"),
        (("retries", "reason"), "reqps"),
        (("queue size", "capacity"), "short"),
        (("delivery lag", "p99"), "s"),
        (("dropped", "reason"), "short"),
        (("operations per batch",), "short"),
        (("pitfalls", "code"), "ops"),
        (("webhook events", "metric"), "ops"),
        (("bounce", "complaint"), "percentunit"),
        (("web requests", "blocked"), "s"),
        (("error ratio",), "percentunit"),
        (("since the last delivery",), "s"),
        (("outage mode", "endpoint"), "short"),
        (("expired",), "ops"),
        (("spool errors", "kind"), "ops"),
        (("fallbacks", "method"), "ops"),
    ],
)
def test_required_panels_exist_with_units(words: tuple[str, ...], unit: str) -> None:
    matching = [p for p in panels(load_dashboard()) if all(w in p["title"].lower() for w in words)]
    assert len(matching) == 1, words
    assert matching[0]["fieldConfig"]["defaults"]["unit"] == unit


def test_drops_panel_turns_red_above_zero() -> None:
    (panel,) = [p for p in panels(load_dashboard()) if "dropped" in p["title"].lower()]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[0] == {"color": "green", "value": None}
    assert steps[-1]["color"] == "red"
    assert 0 < steps[-1]["value"] < 1


def test_every_expression_reads_only_design_metrics() -> None:
    expressions = dashboard_expressions() + alert_expressions()
    used: set[str] = set()
    for expression in expressions:
        names = metric_names(expression.expr)
        assert names, expression
        assert names <= ALLOWED, (expression.title, names - ALLOWED)
        used |= names
    # Every README metric is shown somewhere.
    assert {
        n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in used
    } >= README_SERIES


def test_every_dashboard_expression_parses_with_promtool(tmp_path: Path) -> None:
    # promtool parses rule expressions offline: wrap each query into a recording rule.
    rules = [
        {"record": f"cioguard:dashboard_query_{index}", "expr": substitute(e.expr)}
        for index, e in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_alert_rules_pass_promtool_check() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    import yaml

    document = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    firing: set[str] = set()
    silent: set[str] = set()
    for test in document["tests"]:
        for case in test["alert_rule_test"]:
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert firing == names
    assert silent == names


RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/cioguard/cioguard/blob/main/docs/runbooks.md#"


def test_alerts_have_summary_description_runbook_url_severity_and_for() -> None:
    expected = {
        "CustomerIOEventsDropping",
        "CustomerIOEventsDropped",
        "CustomerIOEventsDroppedAtShutdown",
        "CustomerIOSenderStalled",
        "CustomerIOEndpointOutage",
        "CustomerIOMetricsAbsent",
        "CustomerIORateLimited",
        "CustomerIOQueueNearlyFull",
        "CustomerIODeliveryLagHigh",
        "CustomerIORequestErrors",
        "CustomerIOSpoolErrors",
        "CustomerIOBounceRateHigh",
    }
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == expected
    for rule in rules:
        # runbook_url is what Alertmanager templates, the Prometheus Operator and Grafana look for.
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert len(rule["annotations"]["description"]) > 60, rule["alert"]
        assert rule["annotations"]["runbook_url"] == RUNBOOK_BASE + rule["alert"].lower()
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        # A `for:` on every rule: one bad scrape or one deploy never pages.
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), rule["alert"]


def test_every_runbook_url_has_a_section_saying_what_to_check_and_do() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    for rule in alert_rules():
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert f'<a id="{anchor}"></a>\n## {rule["alert"]}\n' in text, rule["alert"]
        section = text.split(f"## {rule['alert']}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("**Means:**", "**Check:**", "**Fix:**"):
            assert part in section, (rule["alert"], part)
    # Links between sections resolve.
    for target in re.findall(r"\]\(#([a-z0-9-]+)\)", text):
        assert f'<a id="{target}"></a>' in text, target


def test_drop_severities_by_reason() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    page = rules["CustomerIOEventsDropping"]
    assert page["labels"]["severity"] == "critical"
    assert 'reason=~"expired|queue_full|rejected|spool_error"' in page["expr"]
    assert rules["CustomerIOEventsDropped"]["labels"]["severity"] == "warning"
    assert 'reason!="shutdown"' in rules["CustomerIOEventsDropped"]["expr"]
    assert rules["CustomerIOEventsDroppedAtShutdown"]["labels"]["severity"] == "info"
    assert 'reason="shutdown"' in rules["CustomerIOEventsDroppedAtShutdown"]["expr"]


def test_every_ratio_has_a_volume_guard() -> None:
    # A ratio without a minimum volume fires on 1 error in 10 requests (or on size / 0).
    for rule in alert_rules():
        if " / " not in rule["expr"]:
            continue
        guard = rule["expr"].rsplit(" and on ", 1)
        assert len(guard) == 2, rule["alert"]
        assert re.search(r"(>=|>) \d+\s*$", guard[1]), rule["alert"]


def test_requires_matches_the_schema_version() -> None:
    # The Grafana release that introduced each dashboard schemaVersion (what it writes on export).
    first_grafana = {36: (9, 0), 37: (9, 4), 38: (10, 0), 39: (10, 3)}
    dashboard = load_dashboard()
    (grafana,) = [r for r in dashboard["__requires"] if r["id"] == "grafana"]
    version = tuple(int(part) for part in grafana["version"].split(".")[:2])
    assert version >= first_grafana[dashboard["schemaVersion"]]
    panel_types = {p["type"] for p in panels(dashboard)} - {"row"}
    assert panel_types <= {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}
