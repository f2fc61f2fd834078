"""cioguard.django in real server processes: gunicorn (WSGI, 2 workers, multiprocess metrics),
uvicorn (ASGI) and runserver; settings.CIOGUARD as the only configuration; delivery at exit."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cioguard.testing import FakeCustomerIO

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "web"))  # the shared server helpers of the web tests

from servers import BIN, example_env, run_server, scrape_until  # noqa: E402
from web_helpers import free_port  # noqa: E402

# An hour between flushes: only the exit path can deliver before the server is gone.
SETTING = json.dumps({"flush_interval": 3600, "disabled_pitfalls": ["CIO003"]})


def _sample(metrics: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}\s+([0-9.e+-]+)$", metrics, re.M))


def _env(fake: FakeCustomerIO, **extra: str) -> dict[str, str]:
    return example_env(fake.url, TEST_CIOGUARD=SETTING, PYTHONPATH=str(HERE), **extra)


@pytest.mark.slow
def test_gunicorn_workers_merge_metrics_and_deliver_at_exit(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        argv = [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--no-control-socket"]
        env = _env(fake, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        with run_server([*argv, "project.wsgi:application"], port, env, tmp_path / "gunicorn.log") as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                with ThreadPoolExecutor(max_workers=8) as pool:  # sync workers: several answer
                    responses = list(pool.map(lambda n: http.get(f"/signup/plan{n}/?hold=0.1"), range(24)))
                assert [r.status_code for r in responses] == [200] * 24
                pids = {r.json()["pid"] for r in responses}
                metrics = scrape_until(http, "customerio_http_request_blocked_seconds_count", 24)
            server.stop(timeout=30)
            assert server.process.returncode == 0, server.output()
        assert len(pids) == 2  # so the scrape merged both workers' files
        assert _sample(metrics, "customerio_http_request_blocked_seconds_count") >= 24
        assert sorted(e.data["plan"] for e in fake.events) == sorted(f"plan{n}" for n in range(24))


@pytest.mark.slow
def test_uvicorn_asgi_serves_async_and_sync_views_and_delivers_at_exit(tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--app-dir", str(HERE)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        with run_server(argv, port, _env(fake), tmp_path / "uvicorn.log") as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for n in range(3):
                    assert http.get(f"/asignup/async{n}/").status_code == 200
                    assert http.get(f"/signup/sync{n}/").status_code == 200
                assert http.get("/ascope/5/").json() == {"method": "GET", "route": "/ascope/<int:item>/"}
                metrics = http.get("/metrics").text
            server.stop()
            assert server.process.returncode in (0, -signal.SIGTERM), server.output()
        assert _sample(metrics, "customerio_http_request_blocked_seconds_count") >= 7  # + /healthz probes
        assert sorted(e.data["plan"] for e in fake.events) == sorted(
            [f"async{n}" for n in range(3)] + [f"sync{n}" for n in range(3)]
        )


@pytest.mark.slow
def test_runserver_delivers_after_ctrl_c(tmp_path: Path) -> None:
    with FakeCustomerIO(https=False) as fake:
        port = free_port()
        argv = [sys.executable, str(HERE / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"]
        with run_server(argv, port, _env(fake), tmp_path / "runserver.log") as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.get("/signup/dev/").status_code == 200
                assert "customerio_http_request_blocked_seconds_count" in http.get("/metrics").text
            server.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
            server.process.wait(timeout=20)
        assert [e.data["plan"] for e in fake.events] == ["dev"], server.output()


@pytest.mark.slow
def test_runserver_with_its_autoreloader_delivers_after_ctrl_c(tmp_path: Path) -> None:
    """Ctrl-C reaches the reloader and the server process; the reloader gave the server 0.25 s
    before SIGKILL (CPython's subprocess), less than an exit flush that must wait out a
    Retry-After. cioguard.django gives it ``exit_timeout``."""
    with FakeCustomerIO(https=False) as fake:
        fake.fail_next(1, status=503, retry_after=1)  # the exit flush needs a retry a second later
        port = free_port()
        argv = [sys.executable, str(HERE / "manage.py"), "runserver", f"127.0.0.1:{port}"]  # reloader on
        with run_server(argv, port, _env(fake), tmp_path / "runserver.log", new_session=True) as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                assert http.get("/signup/dev/").status_code == 200
            os.killpg(server.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
            server.process.wait(timeout=30)
        assert [e.data["plan"] for e in fake.events] == ["dev"], server.output()
