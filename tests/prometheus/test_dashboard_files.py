"""Static checks of dashboards/: generator in sync, Grafana schema, DESIGN names, promtool check + test."""

from __future__ import annotations

import copy
import importlib.util
import json
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
    SCHEMA,
    alert_expressions,
    alert_rules,
    dashboard_expressions,
    load_dashboard,
    metric_names,
    panels,
    substitute,
)

#: DESIGN.md's metric names as exposed (counters with _total; histograms read via their series).
DESIGN_SERIES = {
    "customerio_calls_total",
    "customerio_call_duration_seconds",
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
    "customerio_request_duration_seconds",
    "customerio_delivery_lag_seconds",
    "customerio_batch_operations",
    "customerio_http_request_blocked_seconds",
}
ALLOWED = DESIGN_SERIES | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}


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
    # Every DESIGN metric is shown somewhere.
    assert {
        n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in used
    } >= DESIGN_SERIES


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


def test_alerts_have_summary_description_runbook_and_severity() -> None:
    expected = {
        "CustomerIOEventsDropped",
        "CustomerIORateLimited",
        "CustomerIOQueueNearlyFull",
        "CustomerIODeliveryLagHigh",
        "CustomerIORequestErrors",
        "CustomerIOBounceRateHigh",
    }
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == expected
    for rule in rules:
        assert set(rule["annotations"]) >= {"summary", "description", "runbook"}, rule["alert"]
        assert all(len(rule["annotations"][k]) > 30 for k in ("description", "runbook")), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
