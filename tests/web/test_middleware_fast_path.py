"""The middleware's per-request fast path keeps its behaviour: lazy request scopes, /metrics under a
root_path, plain-list WSGI responses, blocked time tallied through ``cioguard.blocked.tally``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

from starlette.responses import PlainTextResponse
from web_helpers import KeepingRecorder

import cioguard.asgi
import cioguard.wsgi
from cioguard.scope import current_request

Message = dict[str, Any]


def _asgi(app: Any, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _body(sent: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("app")(scope, receive, send)


async def _metrics(scope: Any, receive: Any, send: Any) -> None:
    await PlainTextResponse("metrics")(scope, receive, send)


def _http(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": []}


def test_asgi_metrics_under_a_root_path(recorder: KeepingRecorder) -> None:
    # ASGI servers put the root_path in front of the path (uvicorn --root-path /api).
    app = cioguard.asgi.CioGuardMiddleware(_app, metrics_app=_metrics)
    assert _body(_asgi(app, _http("/api/metrics", root_path="/api"))) == b"metrics"
    assert _body(_asgi(app, _http("/metrics", root_path="/api"))) == b"metrics"  # path without root
    assert _body(_asgi(app, _http("/api/metrics", "POST", root_path="/api"))) == b"app"
    assert _body(_asgi(app, _http("/other/metrics", root_path="/api"))) == b"app"
    assert _body(_asgi(app, _http("/api/metrics"))) == b"app"  # no root_path: not the metrics path
    assert _body(_asgi(app, _http("/metrics", "HEAD"))) == b"metrics"
    assert recorder.blocked == [0.0, 0.0, 0.0]  # scrapes open no request scope


def test_asgi_request_scope_is_built_only_when_asked(recorder: KeepingRecorder) -> None:
    seen: list[Any] = []

    async def asks(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/ask":
            request = current_request()
            assert request is not None
            request.blocked_seconds += 0.5
            seen.append((request.method, request is current_request()))
        await _app(scope, receive, send)

    app = cioguard.asgi.CioGuardMiddleware(asks)
    quiet, asked = _http("/"), _http("/ask", "PUT")
    _asgi(app, quiet)
    _asgi(app, asked)
    assert "cioguard.request_scope" not in quiet  # nothing asked: nothing built
    assert seen == [("PUT", True)]
    assert recorder.blocked == [0.0, 0.5]
    assert current_request() is None


def _start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def test_wsgi_plain_list_is_returned_as_is_and_recorded_at_once(recorder: KeepingRecorder) -> None:
    body = [b"ok"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request = current_request()
        assert request is not None
        assert request.method == "POST"
        request.blocked_seconds += 0.25
        start_response("200 OK", [])
        return body

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/"}
    assert cioguard.wsgi.CioGuardMiddleware(app)(environ, _start) is body  # no wrapper to iterate
    assert recorder.blocked == [0.25]
    quiet = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    cioguard.wsgi.CioGuardMiddleware(lambda e, s: [b""])(quiet, _start)
    assert "cioguard.request_scope" not in quiet  # nothing asked: no RequestScope built
    assert recorder.blocked == [0.25, 0.0]


def test_wsgi_streaming_steps_share_the_requests_scope(recorder: KeepingRecorder) -> None:
    seen: list[tuple[str, str | None]] = []

    def stream() -> Iterator[bytes]:
        request = current_request()
        assert request is not None
        seen.append((request.method, request.route))
        request.blocked_seconds += 0.5
        yield b"a"

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        cioguard.wsgi.set_route("/stream/<id>")
        start_response("200 OK", [])
        return stream()

    result: Any = cioguard.wsgi.CioGuardMiddleware(app)({"REQUEST_METHOD": "GET", "PATH_INFO": "/s"}, _start)
    assert current_request() is None  # closed where it opened; the server iterates later
    assert list(result) == [b"a"]
    assert recorder.blocked == []  # recorded at close(), not before
    result.close()
    assert seen == [("GET", "/stream/<id>")]
    assert recorder.blocked == [0.5]


def test_tally_becomes_the_deque_append_and_a_forked_child_starts_its_own_drain() -> None:
    # A fresh interpreter: forking the test process (threads running) is not something to do here.
    code = textwrap.dedent(
        """
        import os, threading
        from cioguard import blocked
        assert blocked.tally is blocked.record
        blocked.tally(0.0)
        assert blocked.tally == blocked._pending.append, blocked.tally
        pid = os.fork()
        if pid == 0:
            ok = blocked.tally is blocked.record and not blocked._pending
            blocked.tally(0.1)
            ok = ok and blocked.tally == blocked._pending.append
            ok = ok and any(t.name == "cioguard-blocked-drain" for t in threading.enumerate())
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["child", "0"]
