"""The runnable examples: static checks, and each app as a real server process against the emulator."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from servers import EXAMPLES, ROOT, example_env, gunicorn, run_server, scrape_until, uvicorn
from web_helpers import event_body, free_port, signed_headers

from cioguard.testing import FakeCustomerIO

EXAMPLE_KEY = "dev-signing-key"


def _sample(metrics: str, name: str, labels: str = "") -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    pattern = rf"^{re.escape(name)}{re.escape(labels)}\s+([0-9.e+-]+)$"
    values = [float(m.group(1)) for m in re.finditer(pattern, metrics, re.MULTILINE)]
    return sum(values)


def _signup(http: httpx.Client, n: int) -> httpx.Response:
    return http.post(
        "/signup", json={"user_id": str(1000 + n), "email": f"user{n}@example.com", "plan": "pro"}
    )


def _bounce(http: httpx.Client, customer_id: str) -> httpx.Response:
    body = event_body(
        event_id=f"01HZXBOUNCE{customer_id}",
        metric="bounced",
        data={"customer_id": customer_id, "identifiers": {"id": customer_id}, "recipient": "x@example.com"},
    )
    return http.post("/webhooks/customerio", content=body, headers=signed_headers(body, key=EXAMPLE_KEY))


# -- static checks ------------------------------------------------------------------------------


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: `make test` installs Debian's prometheus"
    # Lay the files out as docker-compose.yml mounts them into /etc/prometheus/.
    compose = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    for mount in compose["services"]["prometheus"]["volumes"]:
        source, target = mount.split(":")[:2]
        shutil.copy(EXAMPLES / source, tmp_path / Path(target).name)
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_compose_file_wires_the_services_and_existing_files() -> None:
    compose = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"app", "emulator", "prometheus", "dashboards", "grafana"}
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (EXAMPLES / source).exists(), f"{mount} names a missing path"
    scrape = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())["scrape_configs"][0]
    port = services["app"]["environment"]["GUNICORN_BIND"].rsplit(":", 1)[1]
    assert scrape["static_configs"][0]["targets"] == [f"app:{port}"]
    emulator_port = services["emulator"]["command"][-1].rsplit(" ", 1)[1]
    assert services["app"]["environment"]["CIOGUARD_TRACK_URL"] == f"http://127.0.0.1:{emulator_port}"
    assert services["emulator"]["network_mode"] == "service:app"


def test_grafana_provisioning_loads_the_shipped_dashboard(tmp_path: Path) -> None:
    provisioning = EXAMPLES / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    provider = yaml.safe_load((provisioning / "dashboards" / "cioguard.yml").read_text())["providers"][0]
    compose = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text())
    grafana_mounts = dict(m.split(":")[:2] for m in compose["services"]["grafana"]["volumes"])
    assert grafana_mounts["grafana-dashboards"] == provider["options"]["path"]
    assert source["url"] == "http://prometheus:9090"
    # Run the `dashboards` service's script for real, on local copies of its mounts.
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    shutil.copy(ROOT / "dashboards" / "cioguard.json", tmp_path / "in")
    script = compose["services"]["dashboards"]["command"][-1].replace("$$", "$")
    script = script.replace("/in/", f"{tmp_path}/in/").replace("/out/", f"{tmp_path}/out/")
    subprocess.run(["sh", "-c", script], check=True, timeout=30)
    dashboard = (tmp_path / "out" / "cioguard.json").read_text()
    assert "${DS_PROMETHEUS}" not in dashboard
    uids = {ds["uid"] for ds in _datasources(json.loads(dashboard)) if ds.get("type") == "prometheus"}
    assert uids == {source["uid"]}


def _datasources(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            found.append(node["datasource"])
        for value in node.values():
            found.extend(_datasources(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_datasources(value))
    return found


def test_examples_pass_cioguard_lint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cioguard", "lint", str(EXAMPLES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- real servers ------------------------------------------------------------------------------


@pytest.mark.slow
def test_starlette_example_under_uvicorn_delivers_on_lifespan_shutdown(tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        # An hour between flushes and no exit flush: only the lifespan shutdown can deliver.
        env = example_env(fake.url, CIOGUARD_FLUSH_INTERVAL="3600", CIOGUARD_EXIT_TIMEOUT="0")
        with run_server(uvicorn("starlette_app", port), port, env, tmp_path / "uvicorn.log") as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for n in range(5):
                    assert _signup(http, n).status_code == 201
                assert _bounce(http, "1000").json() == {"status": "ok"}
                metrics = http.get("/metrics").text
            took = server.stop()
            # uvicorn re-raises the signal after a graceful shutdown (exit status -SIGTERM).
            assert server.process.returncode in (0, -signal.SIGTERM), server.output()
        assert took < 10
        assert _sample(metrics, "customerio_http_request_blocked_seconds_count") >= 6
        assert _sample(metrics, "customerio_webhook_events_total", '{metric="bounced"}') == 1
        assert [e.name for e in fake.events] == ["signed_up"] * 5
        assert sorted(p.id or "" for p in fake.people.values()) == [str(1000 + n) for n in range(5)]
        bounced = fake.person("1000")
        assert bounced is not None
        assert bounced.attributes.get("unsubscribed") is True


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["background", "blocking"])
def test_fastapi_example_async_endpoint_latency(tmp_path: Path, mode: str) -> None:
    latency = 0.2
    with FakeCustomerIO(https=False, latency=latency) as fake:
        port = free_port()
        env = example_env(fake.url, CIOGUARD_MODE=mode, CIOGUARD_FLUSH_INTERVAL="0.05")
        with run_server(uvicorn("fastapi_app", port), port, env, tmp_path / "uvicorn.log") as server:
            timings: list[float] = []
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for n in range(4):
                    started = time.perf_counter()
                    assert _signup(http, n).status_code == 201
                    timings.append(time.perf_counter() - started)
                assert fake.wait_for(lambda: len(fake.events) == 4, timeout=10)
                assert _bounce(http, "1001").json() == {"status": "ok"}
                metrics = http.get("/metrics").text
            server.stop()
        assert _sample(metrics, "customerio_webhook_events_total", '{metric="bounced"}') == 1
        blocked = _sample(metrics, "customerio_http_request_blocked_seconds_sum")
        cio007 = _sample(metrics, "customerio_pitfalls_total", '{code="CIO007"}')
        if mode == "background":
            # identify + track per request against a 200 ms API, yet the answer comes at once.
            assert max(timings[1:]) < latency / 2, timings
            assert blocked < 0.05
            assert cio007 == 0
        else:
            assert min(timings) >= 2 * latency, timings
            assert blocked >= 8 * latency
            assert cio007 >= 1
            assert "CIO007" in server.output()


@pytest.mark.slow
def test_flask_example_under_gunicorn_aggregates_workers_and_flushes_on_exit(tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        metrics_dir = tmp_path / "prometheus"
        env = example_env(fake.url, CIOGUARD_FLUSH_INTERVAL="3600", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        with run_server(gunicorn(port), port, env, tmp_path / "gunicorn.log", ready_timeout=60) as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                # Concurrent requests: sync workers serve one at a time, so several workers answer;
                # on a busy machine one fast worker may take a whole round, so go on (bounded) until
                # two have answered.
                responses: list[httpx.Response] = []
                pids: set[int] = set()
                with ThreadPoolExecutor(max_workers=8) as pool:
                    while len(pids) < 2 and len(responses) < 120:
                        start = len(responses)
                        responses += pool.map(lambda n: _signup(http, n), range(start, start + 24))
                        pids = {r.json()["pid"] for r in responses}
                sent = len(responses)
                assert [r.status_code for r in responses] == [201] * sent
                assert _bounce(http, "1000").status_code == 200
                metrics = scrape_until(http, "customerio_http_request_blocked_seconds_count", sent + 1)
            took = server.stop(timeout=30)
            assert server.process.returncode == 0, server.output()
        assert took < 20
        assert _sample(metrics, "customerio_http_request_blocked_seconds_count") >= sent + 1
        assert _sample(metrics, "customerio_webhook_events_total", '{metric="bounced"}') == 1
        # Every worker's queue was delivered at its exit (flush interval: an hour).
        assert len(fake.events) == sent, server.output()
        assert len(pids) >= 2  # so the one scrape above merged several workers' files
