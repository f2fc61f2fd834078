"""The /metrics apps: ASGI (lifespan, http, websocket, other scopes) and WSGI over a real server."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, MutableMapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry

from cioguard.metrics import make_asgi_app, make_wsgi_app
from cioguard.telemetry import PrometheusRecorder


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    recorder = PrometheusRecorder(registry)
    for _ in range(3):
        recorder.call("track", "background", 4e-6)
    recorder.rate_limited("v2_batch")
    return registry


def run_asgi(app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(incoming)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a real server would block here: the test times out if reached
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    return sent


def http_scope(
    method: str = "GET", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> Any:
    return {"type": "http", "method": method, "path": "/", "query_string": query, "headers": headers or []}


def test_asgi_lifespan_completes_startup_and_shutdown(registry: CollectorRegistry) -> None:
    sent = run_asgi(
        make_asgi_app(registry),
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_asgi_http_serves_metrics(registry: CollectorRegistry) -> None:
    sent = run_asgi(make_asgi_app(registry), http_scope(), [{"type": "http.request", "body": b""}])
    start, body = sent
    assert start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-type"].startswith(b"text/plain")
    text = body["body"].decode()
    assert 'customerio_calls_total{method="track",mode="background"} 3.0' in text
    assert int(headers[b"content-length"]) == len(body["body"])


def test_asgi_gzip_openmetrics_and_name_filter(registry: CollectorRegistry) -> None:
    headers = [(b"accept-encoding", b"gzip, br"), (b"accept", b"application/openmetrics-text; version=1.0.0")]
    # Filtered to two families (the histogram makes the body big enough to be worth compressing).
    query = b"name[]=customerio_rate_limited_total&name[]=customerio_call_duration_seconds_bucket"
    start, body = run_asgi(make_asgi_app(registry), http_scope(query=query, headers=headers), [])
    out = dict(start["headers"])
    assert out[b"content-encoding"] == b"gzip"
    assert out[b"content-type"].startswith(b"application/openmetrics-text")
    text = gzip.decompress(body["body"]).decode()
    assert 'customerio_rate_limited_total{endpoint="v2_batch"} 1.0' in text
    assert "customerio_call_duration_seconds_bucket{" in text
    assert "customerio_calls_total" not in text
    assert text.rstrip().endswith("# EOF")


def test_asgi_head_options_and_405(registry: CollectorRegistry) -> None:
    app = make_asgi_app(registry)
    start, body = run_asgi(app, http_scope("HEAD"), [])
    assert start["status"] == 200
    assert body["body"] == b""
    assert int(dict(start["headers"])[b"content-length"]) > 0
    start, _ = run_asgi(app, http_scope("OPTIONS"), [])
    assert start["status"] == 200
    assert dict(start["headers"])[b"allow"] == b"GET, HEAD, OPTIONS"
    start, _ = run_asgi(app, http_scope("POST"), [])
    assert start["status"] == 405


def test_asgi_websocket_is_closed_and_unknown_scopes_ignored(registry: CollectorRegistry) -> None:
    app = make_asgi_app(registry)
    sent = run_asgi(app, {"type": "websocket", "path": "/"}, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1003}]
    assert run_asgi(app, {"type": "webtransport"}, []) == []


def test_asgi_collection_runs_off_the_event_loop(registry: CollectorRegistry) -> None:
    loop_threads: set[int] = set()
    collect_threads: set[int] = set()

    class Probe:
        def collect(self) -> list[Any]:
            collect_threads.add(threading.get_ident())
            return []

    registry.register(Probe())

    async def main() -> None:
        loop_threads.add(threading.get_ident())
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await make_asgi_app(registry)(http_scope(), receive, send)
        assert sent[0]["status"] == 200

    asyncio.run(main())
    assert collect_threads
    assert not collect_threads & loop_threads


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_url(registry: CollectorRegistry) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_wsgi_app_over_a_real_server(wsgi_url: str) -> None:
    with urllib.request.urlopen(wsgi_url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    assert 'customerio_rate_limited_total{endpoint="v2_batch"} 1.0' in text
    request = urllib.request.Request(wsgi_url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert b"customerio_calls_total" in gzip.decompress(response.read())


def test_wsgi_methods(wsgi_url: str) -> None:
    head = urllib.request.Request(wsgi_url, method="HEAD")
    with urllib.request.urlopen(head, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b""
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(wsgi_url, data=b"x", method="POST"), timeout=5)
    assert info.value.code == 405
    assert info.value.headers["Allow"] == "GET, HEAD, OPTIONS"
    info.value.close()


def test_two_apps_and_two_recorders_on_one_registry_all_record() -> None:
    registry = CollectorRegistry()
    first, second = PrometheusRecorder(registry), PrometheusRecorder(registry)
    first.delivered("track", 3)
    second.delivered("track", 4)
    for app in (make_asgi_app(registry), make_asgi_app(registry)):
        _, body = run_asgi(app, http_scope(), [])
        assert 'customerio_events_delivered_total{method="track"} 7.0' in body["body"].decode()


@pytest.mark.parametrize(("switch", "created"), [(None, True), ("True", False)])
def test_created_series_follow_prometheus_clients_switch_which_cioguard_never_sets(
    switch: str | None, created: bool
) -> None:
    # README: `_created` series go away with PROMETHEUS_DISABLE_CREATED_SERIES=True in the
    # environment; it is process-wide, so cioguard (even instrument()) leaves it alone.
    code = (
        "import os, cioguard\n"
        "from prometheus_client import CollectorRegistry, generate_latest\n"
        "from cioguard.telemetry import PrometheusRecorder\n"
        "registry = CollectorRegistry()\n"
        "cioguard.instrument(registry=registry, metrics='prometheus', track_url='http://127.0.0.1:9')\n"
        "PrometheusRecorder(registry).call('track', 'background', 1e-6)\n"
        "print('_created' in generate_latest(registry).decode())\n"
        "print(os.environ.get('PROMETHEUS_DISABLE_CREATED_SERIES'))\n"
        "cioguard.shutdown(timeout=1)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_DISABLE_CREATED_SERIES"}
    if switch is not None:
        env["PROMETHEUS_DISABLE_CREATED_SERIES"] = switch
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(created), str(switch)]
