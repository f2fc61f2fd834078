"""A tiny loopback Customer.io stand-in for the delivery tests (until/besides the emulator).

It records every request and answers from a script: ``sink.script(status, headers, delay)``
entries are consumed one per request, then ``sink.default`` applies.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cioguard.operations.model import Endpoint, Operation


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float
    status: int = 0

    def entries(self) -> list[dict[str, Any]]:
        data = json.loads(self.body)
        return list(data["batch"]) if "batch" in data else [data]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    delay: float = 0.0
    #: Close the connection without answering (a reset).
    reset: bool = False


class Sink:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Reply()
        self.responder: Callable[[Recorded], Reply] | None = None
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                rec = Recorded(self.command, self.path, dict(self.headers), body, time.monotonic())
                with sink._lock:
                    reply = sink._script.popleft() if sink._script else None
                if reply is None:
                    reply = sink.responder(rec) if sink.responder else sink.default
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                rec.status = reply.status
                with sink._cond:
                    sink.requests.append(rec)
                    sink._cond.notify_all()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign,assignment]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            reqs = [r for r in self.requests if 200 <= r.status < 300]
        return [e for r in reqs for e in r.entries()]

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


_counter = iter(range(10**12))


def make_op(
    endpoint: Endpoint,
    person: str = "u1",
    seq: int | None = None,
    route: str = "v2",
    pad: int = 0,
    method: str = "track",
) -> Operation:
    n = next(_counter) if seq is None else seq
    op_id = f"01TEST{n:020d}"
    if route == "v2":
        entry = {
            "type": "person",
            "action": "event",
            "identifiers": {"id": person},
            "name": "x",
            "id": op_id,
            "attributes": {"n": n, "pad": "p" * pad},
        }
        path, http_method = "/api/v2/batch", "POST"
    else:
        entry = {"name": "x", "id": op_id, "data": {"n": n, "pad": "p" * pad}}
        path, http_method = f"/api/v1/customers/{person}/events", "POST"
    return Operation(
        endpoint=endpoint,
        method=method,
        route=route,  # type: ignore[arg-type]
        http_method=http_method,
        path=path,
        body=json.dumps(entry, separators=(",", ":")).encode(),
        shard_key=person,
        op_id=op_id,
        event_id=op_id,
        enqueued_at=time.monotonic(),
        created_at=time.time(),
    )
