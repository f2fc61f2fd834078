"""Helpers for the scale-out tests: a real redis-server on 127.0.0.1 and operation factories."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from typing import Any

import redis

from cioguard.operations.model import Endpoint, Operation
from cioguard.operations.ulid import new_ulid
from cioguard.testing import FakeCustomerIO

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A throw-away redis-server (AOF on, fsync ``always`` or ``everysec``) in a temporary directory."""

    def __init__(self, fsync: str = "always", appendonly: bool = True) -> None:
        self.fsync = fsync
        self.appendonly = appendonly
        self.dir = tempfile.mkdtemp(prefix="cioguard-redis-")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.dir,
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.fsync,
            "--save", "",
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        end = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def stop(self, hard: bool = False) -> None:
        """SIGTERM (redis fsyncs the AOF and exits) or, with ``hard``, SIGKILL (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            if hard:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


def fake_endpoint(fake: FakeCustomerIO) -> Endpoint:
    token = base64.b64encode(f"{fake.site_id}:{fake.api_key}".encode()).decode()
    return Endpoint(api="track", base_url=fake.url, auth_header=f"Basic {token}", label="track")


def event_op(endpoint: Endpoint, person: str, seq: int, tag: str = "t") -> Operation:
    """A v2 ``event`` for ``person`` carrying its sequence number (to check order)."""
    ulid = new_ulid()
    entry = {
        "type": "person",
        "identifiers": {"id": person},
        "action": "event",
        "name": "step",
        "id": ulid,
        "attributes": {"seq": seq, "tag": tag},
    }
    return Operation(
        endpoint=endpoint,
        method="track",
        route="v2",
        http_method="POST",
        path="/api/v2/batch",
        body=json.dumps(entry, separators=(",", ":")).encode(),
        shard_key=person,
        op_id=ulid,
        event_id=ulid,
        enqueued_at=time.monotonic(),
        created_at=time.time(),
    )


def sequences(fake: FakeCustomerIO) -> dict[str, list[int]]:
    """person → the ``seq`` of their events in the order the emulator accepted them."""
    out: dict[str, list[int]] = defaultdict(list)
    for event in fake.events:
        out[str(event.person)].append(int(event.data["seq"]))
    return dict(out)


def child_env(**extra: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REQUESTS_CA_BUNDLE", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env
