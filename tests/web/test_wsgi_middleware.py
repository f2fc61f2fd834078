"""cioguard.wsgi.CioGuardMiddleware in-process: scopes, blocked time, close(), metrics path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from web_helpers import KeepingRecorder
from werkzeug.test import Client

import cioguard.wsgi
from cioguard.scope import current_request
from cioguard.wsgi import CioGuardMiddleware


def _block(seconds: float) -> None:
    scope = current_request()
    assert scope is not None
    scope.blocked_seconds += seconds


def _serve(app: Any, path: str = "/", method: str = "GET") -> tuple[list[str], bytes]:
    """A minimal PEP 3333 server loop: iterate, then always close()."""
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": None}
    result = app(environ, start_response)
    chunks: list[bytes] = []
    try:
        for chunk in result:
            chunks.append(chunk)
    finally:
        if hasattr(result, "close"):
            result.close()
    return statuses, b"".join(chunks)


def test_flask_route_template_and_blocked_time(recorder: KeepingRecorder) -> None:
    flask_app = Flask(__name__)
    seen: list[tuple[str, str | None]] = []

    @flask_app.before_request
    def _route() -> None:
        if request.url_rule is not None:
            cioguard.wsgi.set_route(request.url_rule.rule)

    @flask_app.post("/users/<int:user_id>/events")
    def events(user_id: int) -> dict[str, int]:
        scope = current_request()
        assert scope is not None
        seen.append((scope.method, scope.route))
        _block(0.125)
        return {"user": user_id}

    flask_app.wsgi_app = CioGuardMiddleware(flask_app.wsgi_app)  # type: ignore[method-assign]
    response = Client(flask_app).post("/users/5/events")
    assert response.json == {"user": 5}
    response.close()  # the server's close(): only then is the request over
    assert seen == [("POST", "/users/<int:user_id>/events")]
    assert recorder.blocked == [0.125]
    assert current_request() is None


def test_streaming_time_is_added_and_close_always_runs(recorder: KeepingRecorder) -> None:
    closed: list[bool] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            _block(0.5)  # a streaming response calling Customer.io while the server iterates
            yield b"a"
            _block(0.25)
            yield b"b"

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        _block(1.0)
        start_response("200 OK", [])
        return Body()

    statuses, body = _serve(CioGuardMiddleware(app))
    assert (statuses, body) == (["200 OK"], b"ab")
    assert closed == [True]
    assert recorder.blocked == [1.75]


def test_close_runs_when_iteration_fails(recorder: KeepingRecorder) -> None:
    closed: list[bool] = []

    class Failing:
        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            raise OSError("disk gone")

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Failing:
        start_response("200 OK", [])
        return Failing()

    with pytest.raises(OSError, match="disk gone"):
        _serve(CioGuardMiddleware(app))
    assert closed == [True]
    assert recorder.blocked == [0.0]


def _ignore_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def test_close_runs_even_if_the_server_never_iterates(recorder: KeepingRecorder) -> None:
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("204 No Content", [])
        return Body()

    result = CioGuardMiddleware(app)({"REQUEST_METHOD": "HEAD", "PATH_INFO": "/"}, _ignore_start)
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]  # idempotent
    assert closed == [True]
    assert recorder.blocked == [0.0]


def test_file_wrapper_responses_are_returned_as_is(recorder: KeepingRecorder) -> None:
    class FileWrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            yield self.data

    wrapped = FileWrapper(b"file")

    def app(environ: dict[str, Any], start_response: Any) -> FileWrapper:
        _block(0.5)
        start_response("200 OK", [])
        return wrapped

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/f", "wsgi.file_wrapper": FileWrapper}
    assert CioGuardMiddleware(app)(environ, _ignore_start) is wrapped  # the server may sendfile() it
    assert recorder.blocked == [0.5]


def test_nested_middleware_measures_each_request_once(recorder: KeepingRecorder) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        _block(0.2)
        start_response("200 OK", [])
        return [b"ok"]

    assert _serve(CioGuardMiddleware(CioGuardMiddleware(app))) == (["200 OK"], b"ok")
    assert recorder.blocked == [0.2]


def test_exception_is_recorded_and_reraised(recorder: KeepingRecorder) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        _block(0.3)
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        _serve(CioGuardMiddleware(app))
    assert recorder.blocked == [0.3]
    assert current_request() is None


def test_metrics_path(recorder: KeepingRecorder) -> None:
    def metrics(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"customerio_up 1\n"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"app"]

    assert _serve(CioGuardMiddleware(app, metrics_app=metrics), "/metrics")[1] == b"customerio_up 1\n"
    assert _serve(CioGuardMiddleware(app, metrics_app=metrics), "/metrics", "POST")[1] == b"app"
    assert _serve(CioGuardMiddleware(app, metrics_path=None, metrics_app=metrics), "/metrics")[1] == b"app"
    assert recorder.blocked == [0.0, 0.0]
    default = Client(CioGuardMiddleware(app)).get("/metrics")
    assert default.status_code == 200
    assert default.content_type.startswith("text/plain")


def test_set_route_outside_a_request_is_a_no_op() -> None:
    cioguard.wsgi.set_route("/x")
    assert current_request() is None


def test_metrics_path_is_validated() -> None:
    with pytest.raises(ValueError, match="metrics_path"):
        CioGuardMiddleware(lambda e, s: [], metrics_path="metrics")
