"""End to end: an instrumented uvicorn app, the emulator injecting 429s and 500s, a real Prometheus.

Every PromQL expression of ``dashboards/cioguard.json`` and ``dashboards/alerts.yml`` runs through
Prometheus' HTTP API: each must parse and evaluate, and the panels this traffic exercises must return
plausible, non-empty data. The alert rules are also loaded into Prometheus and must evaluate cleanly.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prom_harness import JOB, PrometheusServer, free_port
from promql_sources import ALERTS, Expression, alert_expressions, dashboard_expressions, substitute

from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import sign

pytestmark = pytest.mark.slow

APP = Path(__file__).with_name("instrumented_app.py")
SIGNING_KEY = "test-signing-key"
MAX_QUEUE_SIZE = 5000


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


@pytest.fixture
def emulator() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True) as fake:
        yield fake


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers-multiprocess"])
def workers(request: pytest.FixtureRequest) -> int:
    workers: int = request.param
    return workers


@pytest.fixture
def app_url(emulator: FakeCustomerIO, tmp_path: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        REQUESTS_CA_BUNDLE=str(emulator.ca_bundle),
        WEBHOOK_SIGNING_KEY=SIGNING_KEY,
        CIO_URL=emulator.track_url,
        MAX_QUEUE_SIZE=str(MAX_QUEUE_SIZE),
    )
    if workers == 1:
        command = [sys.executable, str(APP), "--port", str(port), "--cio-url", emulator.track_url,
                   "--max-queue-size", str(MAX_QUEUE_SIZE)]  # fmt: skip
    else:
        # The documented multiprocess setup: a fresh directory, set before any worker starts.
        directory = tmp_path / "multiproc"
        directory.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        command = [sys.executable, "-m", "uvicorn", "--factory", "instrumented_app:create_app",
                   "--app-dir", str(APP.parent), "--workers", str(workers), "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log_path = tmp_path / "app.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if http("GET", f"{url}/metrics") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the app did not start:\n" + log_path.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def post_webhook(app_url: str, metric: str, valid: bool = True) -> int:
    now = int(time.time())
    body = json.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "object_type": "email",
            "metric": metric,
            "timestamp": now,
            "data": {"customer_id": "user-1", "identifiers": {"id": "user-1"}, "delivery_id": "d1",
                     "recipient": "user1@example.com"},
        }
    ).encode()  # fmt: skip
    signature = sign(SIGNING_KEY if valid else "wrong-key", now, body)
    headers = {"Content-Type": "application/json", "X-CIO-Timestamp": str(now), "X-CIO-Signature": signature}
    return http("POST", f"{app_url}/webhooks/", body, headers)


def traffic_phase(app_url: str, emulator: FakeCustomerIO) -> None:
    """One round of everything the dashboard shows, with faults: a 429 and a 500 (both retried), a
    400 (not retryable: that request's operations are dropped as ``rejected``) and a connection
    reset. The sender runs several lanes concurrently, so which batch meets which fault varies; the
    totals do not."""
    # Only on the sender's batch path: a /blocking call (the SDK, whose urllib3 retries a 429 with
    # Retry-After by itself, unseen) must not use them up, in whichever worker it runs.
    batch = "/api/v2/batch"
    emulator.fail_next(1, status=429, retry_after=1, path=batch)
    emulator.fail_next(1, status=500, path=batch)
    emulator.fail_next(1, status=400, path=batch)
    emulator.reset_next(1, path=batch)  # no response at all: status_code="error", error_type="connection"
    assert http("GET", f"{app_url}/work?n=10") == 200
    assert http("POST", f"{app_url}/flush") == 200
    assert http("GET", f"{app_url}/work?n=10") == 200
    assert http("POST", f"{app_url}/flush") == 200
    for _ in range(2):
        assert http("GET", f"{app_url}/blocking") == 200
    assert http("GET", f"{app_url}/pitfall") == 200
    assert http("POST", f"{app_url}/flush") == 200
    for metric in ("sent", "sent", "sent", "sent", "delivered", "bounced", "spammed"):
        assert post_webhook(app_url, metric) == 200
    assert post_webhook(app_url, "sent", valid=False) == 401


Check = Callable[[list[float]], bool]


def positive(values: list[float]) -> bool:
    return any(math.isfinite(v) and v > 0 for v in values) and not any(math.isinf(v) for v in values)


def present(values: list[float]) -> bool:
    return bool(values)


def ratio(values: list[float]) -> bool:
    return positive(values) and all(0 <= v <= 1 for v in values if math.isfinite(v))


#: Panel title (prefix) -> what the traffic above must make it show.
EXPECTED: dict[str, Check] = {
    "Customer.io calls / s": positive,
    "Caller time": positive,
    "Time web requests spent blocked": positive,
    "Pitfalls / s": positive,
    "HTTP latency": positive,
    "Requests / s by status code": positive,
    "429 Too Many Requests": positive,
    "Retries / s by reason": positive,
    "Request error ratio": ratio,
    "Operations enqueued vs delivered": positive,
    "Queue size vs capacity": present,
    "Queue fill": lambda values: present(values) and all(0 <= v <= 1 for v in values),
    "Operations dropped in range": positive,
    "Delivery lag": positive,
    "Operations per batch": positive,
    "Durable spool": present,
    "Webhook events / s": positive,
    "Bounce and complaint rate": ratio,
    "Webhook requests rejected": positive,
    "Seconds since the last delivery [{{instance}}]": lambda values: (
        present(values) and all(0 <= v < 120 for v in values)
    ),
    # Only while operations wait without deliveries: empty on a healthy app (it must still evaluate).
    "Seconds since the last delivery [stalled": lambda values: values == [],
    "Outage mode by endpoint": lambda values: all(v == 0 for v in values),
    "Expired operations": lambda values: present(values) and all(v == 0 for v in values),
    "Spool errors": lambda values: present(values) and all(v == 0 for v in values),
    # No series before the first fallback; none happen here.
    "Fallbacks to the blocking SDK": lambda values: values == [],
}


#: Alerts whose condition must be false on this healthy (if fault-injected) app right now.
QUIET_ALERTS = {
    "CustomerIOSenderStalled",
    "CustomerIOEndpointOutage",
    "CustomerIOMetricsAbsent",
    "CustomerIOSpoolErrors",
    "CustomerIOQueueNearlyFull",
    "CustomerIOEventsDroppedAtShutdown",
}


def expectation(expression: Expression) -> Check:
    if expression.source == "variable":
        return present
    if expression.source == "alert":
        if expression.title in QUIET_ALERTS:
            return lambda values: values == []
        return lambda values: True  # must parse and evaluate; firing depends on sustained conditions
    matches = [check for title, check in EXPECTED.items() if expression.title.startswith(title)]
    assert len(matches) == 1, f"no expectation for panel {expression.title!r}: add it to EXPECTED"
    return matches[0]


def test_every_dashboard_and_alert_query_against_real_prometheus(
    app_url: str, emulator: FakeCustomerIO, tmp_path: Path, workers: int
) -> None:
    target = app_url.removeprefix("http://")
    with PrometheusServer(tmp_path, targets=[target], rule_files=[ALERTS]) as prom:
        prom.wait_target_up(timeout=20)
        # Two rounds with scrapes in between: counters exist before they grow, so rate() sees growth.
        traffic_phase(app_url, emulator)
        prom.wait_scrapes(2)
        traffic_phase(app_url, emulator)
        prom.wait_scrapes(3)

        variables = {"job": JOB, "instance": ".*"}
        failures: list[str] = []
        expressions = dashboard_expressions() + alert_expressions()
        for expression in expressions:
            expr = substitute(expression.expr, variables)
            values = prom.values(expr)  # raises QueryError if Prometheus cannot parse/evaluate it
            if not expectation(expression)(values):
                failures.append(f"{expression.source} {expression.title}: {values}\n    {expr}")
        assert failures == [], "\n".join(failures)

        # Specific, exact facts behind the panels.
        # Multiprocess: capacity has one series per live worker (liveall) and sums to the total.
        assert prom.values(f'sum(customerio_queue_capacity{{job="{JOB}"}})') == [workers * MAX_QUEUE_SIZE]
        codes = {s["metric"]["status_code"] for s in prom.query("customerio_requests_total")}
        assert {"2xx", "4xx", "429", "5xx"} <= codes
        assert codes <= {"2xx", "3xx", "4xx", "429", "5xx", "error"}
        errors = prom.query('customerio_requests_total{status_code="error"}')
        assert {s["metric"]["error_type"] for s in errors} == {"connection"}
        assert all(
            "error_type" not in s["metric"]
            for s in prom.query('customerio_requests_total{status_code!="error"}')
        )
        reasons = {s["metric"]["reason"] for s in prom.query("customerio_retries_total > 0")}
        assert {"status_429", "status_5xx"} <= reasons
        assert prom.values('customerio_events_dropped_total{reason="rejected"}')[0] > 0
        assert prom.query('customerio_calls_total{method="other"}') == []
        assert prom.query('customerio_requests_total{endpoint="other"}') == []
        bounce = prom.values(
            'sum(increase(customerio_webhook_events_total{metric="bounced"}[5m]))'
            ' / sum(increase(customerio_webhook_events_total{metric="sent"}[5m]))'
        )
        assert bounce
        assert 0.1 < bounce[0] < 0.5  # 1 of 4 per phase: 25 %, up to extrapolation
        # The alert rules load and evaluate without errors in this Prometheus version.
        groups = prom.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert len(rules) == len(alert_expressions())
        assert all(rule["health"] in {"ok", "unknown"} for rule in rules), rules
        (dropped_rule,) = [r for r in rules if r["name"] == "CustomerIOEventsDropped"]
        assert dropped_rule["alerts"], "the 400-rejected operations must make CustomerIOEventsDropped fire"
