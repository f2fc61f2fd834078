"""cioguard.django in-process: the app's ready(), the middleware in sync and async chains, /metrics.

Django's test ``Client`` runs the middleware chain in sync mode, ``AsyncClient`` in async mode; the
SDK is the real one, sending to the emulator.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings
from project import views
from prometheus_client import CollectorRegistry

import cioguard
from cioguard.blocked import drain
from cioguard.django.middleware import CioGuardMiddleware
from cioguard.testing import FakeCustomerIO

LATENCY = 0.1
Start = Callable[..., CollectorRegistry]


def _line(marker: str) -> int:
    """The line of ``project/views.py`` carrying ``# marker``."""
    lines = Path(views.__file__).read_text().splitlines()
    return next(n for n, text in enumerate(lines, start=1) if text.rstrip().endswith(f"# {marker}"))


@pytest.fixture
def fake() -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True, latency=LATENCY) as emulator, emulator.trust():
        views.CLIENT = emulator.client()
        yield emulator
    views.CLIENT = None


@pytest.fixture
def start(fake: FakeCustomerIO) -> Iterator[Start]:
    """Run the app's ``ready()`` with ``settings.CIOGUARD`` = the given options (+ the emulator)."""
    overrides: list[Any] = []

    def run(**options: Any) -> CollectorRegistry:
        registry = CollectorRegistry()
        config = {
            "track_url": fake.track_url,
            "registry": registry,
            "disabled_pitfalls": ["CIO003"],
            **options,
        }
        override = override_settings(CIOGUARD=config)
        override.enable()
        overrides.append(override)
        apps.get_app_config("cioguard").ready()
        return registry

    yield run
    cioguard.uninstrument(timeout=5)
    for override in overrides:
        override.disable()


def _get(kind: str, path: str) -> Any:
    if kind == "sync":
        return Client().get(path)
    return asyncio.run(AsyncClient().get(path))


def test_ready_instruments_from_the_cioguard_setting(start: Start, fake: FakeCustomerIO) -> None:
    registry = start(flush_interval=3600)
    response = Client().get("/signup/pro/")
    assert response.status_code == 200
    assert fake.events == []  # queued in the background, not sent by the request
    assert cioguard.flush(timeout=5)
    assert [(e.name, e.data["plan"]) for e in fake.events] == [("signed_up", "pro")]
    scrape = Client().get("/metrics")
    assert scrape.status_code == 200
    text = scrape.content.decode()
    assert 'customerio_calls_total{method="track",mode="background"} 1.0' in text
    assert "customerio_http_request_blocked_seconds_count 1.0" in text  # /metrics itself: not yet
    drain()  # the middleware tallies blocked time and observes it in bulk
    assert registry.get_sample_value("customerio_http_request_blocked_seconds_count") == 2.0


@pytest.mark.parametrize("setting", [{"mode": "sometimes"}, {"no_such_option": 1}, "warn"])
def test_invalid_setting_is_improperly_configured(setting: Any) -> None:
    with override_settings(CIOGUARD=setting), pytest.raises(ImproperlyConfigured, match="CIOGUARD"):
        apps.get_app_config("cioguard").ready()
    assert not cioguard.stats()["instrumented"]


def test_none_setting_leaves_the_sdk_alone() -> None:
    with override_settings(CIOGUARD=None):
        apps.get_app_config("cioguard").ready()
    assert not cioguard.stats()["instrumented"]


@pytest.mark.parametrize(("kind", "path"), [("sync", "/scope/7/"), ("async", "/ascope/7/")])
def test_request_scope_carries_the_url_pattern(kind: str, path: str) -> None:
    answer = _get(kind, path).json()
    assert answer == {"method": "GET", "route": f"/{path.split('/')[1]}/<int:item>/"}


@pytest.mark.parametrize(
    ("kind", "path", "marker"),
    [
        ("sync", "/signup/pro/", "SYNC-CALL"),
        ("async", "/asignup/pro/", "ASYNC-CALL"),
        ("async", "/signup/pro/", "SYNC-CALL"),  # a sync view in an async chain: run in a thread
    ],
)
def test_blocking_call_is_cio007_at_the_views_line_and_measured(
    start: Start, kind: str, path: str, marker: str
) -> None:
    registry = start(mode="blocking")
    with pytest.warns(cioguard.BlockingCallWarning, match="CIO007") as caught:
        assert _get(kind, path).status_code == 200
    assert (caught[0].filename, caught[0].lineno) == (views.__file__, _line(marker))
    drain()
    assert registry.get_sample_value("customerio_http_request_blocked_seconds_count") == 1.0
    blocked = registry.get_sample_value("customerio_http_request_blocked_seconds_sum")
    assert blocked is not None
    assert blocked >= LATENCY


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_client_built_per_request_is_cio009_at_the_views_line(start: Start, kind: str) -> None:
    start()
    # CIO009 fires from the second client for the same credentials: one is built per request here.
    assert _get(kind, "/client/").status_code == 200
    with pytest.warns(cioguard.ClientPerRequestWarning, match="CIO009") as caught:
        _get(kind, "/client/")
    assert (caught[0].filename, caught[0].lineno) == (views.__file__, _line("CLIENT-CALL"))


def test_middleware_takes_the_chains_mode_without_a_thread_hop() -> None:
    from django.http import HttpRequest, HttpResponse

    async def async_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    def sync_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    async_middleware = CioGuardMiddleware(async_view)
    assert async_middleware.async_mode
    assert asyncio.iscoroutinefunction(async_middleware) or inspect.iscoroutinefunction(
        async_middleware.__call__
    )
    from asgiref.sync import iscoroutinefunction

    assert iscoroutinefunction(async_middleware)  # Django awaits it directly, no sync_to_async
    assert not iscoroutinefunction(CioGuardMiddleware(sync_view))


def test_metrics_view_answers_head_and_refuses_post(start: Start) -> None:
    start()
    assert Client().head("/metrics").status_code == 200
    assert Client().post("/metrics").status_code == 405


def test_under_the_asgi_middleware_the_request_is_measured_once_with_djangos_route() -> None:
    import sys

    from django.core.asgi import get_asgi_application
    from prometheus_client import CollectorRegistry

    from cioguard.asgi import CioGuardMiddleware as AsgiMiddleware
    from cioguard.telemetry.recorder import NullRecorder, get_recorder, set_recorder

    sys.path.insert(0, str(Path(__file__).parents[1] / "web"))
    from web_helpers import asgi_request

    class Keeping(NullRecorder):
        def __init__(self) -> None:
            self.blocked: list[float] = []

        def http_request_blocked(self, seconds: float) -> None:
            self.blocked.append(seconds)

    previous, keeping = get_recorder(), Keeping()
    set_recorder(keeping)
    try:
        app = AsgiMiddleware(get_asgi_application(), registry=CollectorRegistry())
        answer = asgi_request(app, "GET", "/ascope/3/").json()
        drain()
    finally:
        set_recorder(previous)
    assert answer == {"method": "GET", "route": "/ascope/<int:item>/"}
    assert keeping.blocked == [0.0]
