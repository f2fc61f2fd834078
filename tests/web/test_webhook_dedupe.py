"""Shared webhook dedupe: a redelivery that lands on another worker process acts once."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import BIN, example_env, run_server
from web_helpers import event_body, free_port, signed_headers

from cioguard.testing import FakeCustomerIO
from cioguard.webhooks import MemoryDedupe, RedisDedupe, SQLiteDedupe, WebhookReceiver
from cioguard.webhooks.dedupe import make_store

HERE = Path(__file__).parent
SERVER_KEY = "dev-signing-key"  # what example_env() gives the servers
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A throw-away redis-server on 127.0.0.1 (no persistence); yields its URL."""
    port = free_port()
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _worker(port: int, kind: str) -> list[str]:
    """One worker process: the WSGI app under gunicorn, or the ASGI app under uvicorn."""
    if kind == "wsgi":
        gunicorn = [str(BIN / "gunicorn"), "--workers", "1", "--no-control-socket", "webhook_server:wsgi"]
        return [*gunicorn, "--bind", f"127.0.0.1:{port}"]
    uvicorn = [sys.executable, "-m", "uvicorn", "webhook_server:asgi", "--log-level", "warning"]
    return [*uvicorn, "--host", "127.0.0.1", "--port", str(port)]


def _deliver(url: str, body: bytes) -> str:
    response = httpx.post(
        f"{url}/webhooks/customerio", content=body, headers=signed_headers(body, key=SERVER_KEY), timeout=10
    )
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def _redelivered_to_two_workers(tmp_path: Path, dedupe: str) -> tuple[list[str], int]:
    """One bounce delivered to worker A (gunicorn), redelivered to B (uvicorn), then to A again."""
    with FakeCustomerIO(https=False) as fake:
        env = example_env(fake.url, WEBHOOK_DEDUPE=dedupe, PYTHONPATH=str(HERE))
        ports = [free_port(), free_port()]
        body = event_body(event_id="01HZXREDELIVERED", metric="bounced")
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(run_server(_worker(port, kind), port, env, tmp_path / f"{port}.log"))
                for port, kind in zip(ports, ("wsgi", "asgi"), strict=True)
            ]
            pids = {httpx.get(f"{server.url}/healthz").text for server in servers}
            assert len(pids) == 2
            answers = [_deliver(servers[n].url, body) for n in (0, 1, 0)]
            for server in servers:  # SIGTERM: each worker delivers what it queued, then exits
                server.stop()
        return answers, fake.stats()["operations"]


@pytest.mark.slow
def test_sqlite_store_acts_once_across_worker_processes(tmp_path: Path) -> None:
    dedupe = f"sqlite:///{tmp_path / 'webhooks.sqlite'}"
    assert _redelivered_to_two_workers(tmp_path, dedupe) == (["ok", "duplicate", "duplicate"], 1)


@pytest.mark.slow
def test_redis_store_acts_once_across_worker_processes(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        assert _redelivered_to_two_workers(tmp_path, url) == (["ok", "duplicate", "duplicate"], 1)


@pytest.mark.slow
def test_default_memory_store_is_per_process(tmp_path: Path) -> None:
    # What the README warns about: without a shared store each worker acts on its own.
    answers, operations = _redelivered_to_two_workers(tmp_path, "memory")
    assert answers == ["ok", "ok", "duplicate"]
    assert operations == 2


def test_sqlite_store_is_atomic_across_threads_and_prunes_old_ids(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SQLiteDedupe(str(tmp_path / "seen.sqlite"), ttl=60, clock=lambda: now[0])
    other = SQLiteDedupe(str(tmp_path / "seen.sqlite"), ttl=60, clock=lambda: now[0])
    results: list[bool] = []
    lock = threading.Lock()

    def add() -> None:
        for n in range(50):
            added = (store if n % 2 else other).add(f"id-{n // 2}")
            with lock:
                results.append(added)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results.count(True) == 25  # 25 distinct ids, each added once among 200 attempts
    now[0] += 120  # past the ttl: the next prune forgets them
    store._inserts = 1000  # the prune runs on the 1001st insert of a store
    assert store.add("fresh")
    assert store.add("id-0")


def test_redis_store_fails_open_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisDedupe(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert store.add("a")
    assert store.add("a")
    assert caplog.text.count("dedupe store failed") == 1


def test_make_store_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_store(None, capacity=5), MemoryDedupe)
    assert isinstance(make_store("memory", capacity=5), MemoryDedupe)
    sqlite = make_store(f"sqlite:///{tmp_path}/x.sqlite", capacity=5)
    assert isinstance(sqlite, SQLiteDedupe)
    assert sqlite.path == f"{tmp_path}/x.sqlite"
    assert isinstance(make_store("redis://127.0.0.1:1/0", capacity=5), RedisDedupe)
    monkeypatch.delenv("CIOGUARD_QUEUE_URL", raising=False)
    with pytest.raises(ValueError, match="queue_url"):
        make_store("redis", capacity=5)
    monkeypatch.setenv("CIOGUARD_QUEUE_URL", "redis://127.0.0.1:1/0")
    assert isinstance(make_store("redis", capacity=5), RedisDedupe)
    for bad in ("sqlite:///", "postgres://x", "/tmp/file.sqlite"):
        with pytest.raises(ValueError, match="dedupe"):
            WebhookReceiver("key", dedupe=bad)
    custom = MemoryDedupe(3)
    assert WebhookReceiver("key", dedupe=custom).dedupe is custom
    # a SQLite path in a directory that does not exist is refused at start-up, not at the first webhook
    with pytest.raises(ValueError, match="does not exist"):
        WebhookReceiver("key", dedupe=f"sqlite:///{tmp_path}/no/such/dir/webhooks.sqlite")
