"""Realistic integration shapes: the runtime rules and lint find the real pitfalls and nothing else.

The modules in ``shapes/`` keep clients the way public integrations do (an ``@lru_cache`` factory
built lazily on the first request, a lazy global getter, a ``cached_property`` on a service object,
event names held in a dataclass) and use them from Django-style views, a thread pool, a Celery task
and a bulk script. Two lines are real pitfalls: a client built per row in a pool task (CIO009) and a
1.x-style ``track(customer_id=..., name=..., total=...)`` whose ``TypeError`` is swallowed (CIO015).
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.pitfalls.shapes import clients, jobs, views
from tests.pitfalls.shapes.setup_cioguard import setup

import cioguard
from cioguard.instrumentation.instrumentor import active_runtime
from cioguard.lint import lint_paths
from cioguard.scope import request_scope
from cioguard.testing import FakeCustomerIO

SHAPES = Path(__file__).parent / "shapes"
EXPECT_RE = re.compile(r"#\s*expect:\s*((?:CIO\d{3}\s*)+)")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCustomerIO]:
    with FakeCustomerIO(https=True) as fake, fake.trust():
        monkeypatch.setenv("SHAPES_HOST", "127.0.0.1")
        monkeypatch.setenv("SHAPES_PORT", str(fake.port))
        clients.get_cio.cache_clear()
        monkeypatch.setattr(clients, "_client", None)
        yield fake
        clients.get_cio.cache_clear()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def instrumented(emulator: FakeCustomerIO, registry: CollectorRegistry) -> Iterator[FakeCustomerIO]:
    setup(track_url=emulator.track_url, registry=registry, flush_interval=0.05, pitfalls="warn")
    yield emulator
    cioguard.uninstrument(timeout=5)


def _count(registry: CollectorRegistry, code: str) -> float:
    runtime = active_runtime()
    assert runtime is not None
    runtime.pitfalls.flush_counts()
    return registry.get_sample_value("customerio_pitfalls_total", {"code": code}) or 0.0


def test_the_correct_shapes_raise_nothing(instrumented: FakeCustomerIO, registry: CollectorRegistry) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any pitfall warning fails the test
        for number in range(1, 6):
            user = f"user-{number}"
            with request_scope("POST", "/signup"):  # the first request builds the cached client
                views.signup({"user_id": user, "email": f"{user}@example.com"})
            with request_scope("POST", "/checkout"):
                views.checkout({"user_id": user, "order_id": f"o-{number}", "total": 12.5})
        jobs.suppress_all([f"user-{n}" for n in range(1, 4)])
        jobs.sync_plan.delay("user-1", "pro")
        with request_scope("DELETE", "/account"):
            views.delete_account({"user_id": "user-5"})
    assert cioguard.flush(timeout=10)
    counted = registry.get_sample_value
    assert all(counted("customerio_pitfalls_total", {"code": f"CIO{n:03d}"}) is None for n in range(1, 16))
    assert len(instrumented.events) == 11


def test_the_real_pitfalls_fire_once_per_line_and_count_every_time(
    instrumented: FakeCustomerIO, registry: CollectorRegistry
) -> None:
    clients.get_cio()  # the application's one client exists
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        jobs.delete_all_badly([f"row-{n}" for n in range(40)])
        jobs.legacy_order_paid("user-1", 10.0)  # swallowed TypeError: no warning, but counted
    shown = [(w.category, Path(w.filename).name) for w in record]
    assert shown == [(cioguard.ClientPerRequestWarning, "jobs.py")]
    assert _count(registry, "CIO009") == 40
    assert _count(registry, "CIO015") == 1
    assert cioguard.flush(timeout=10)
    assert len(instrumented.events) == 0


def test_lint_reports_exactly_the_marked_lines() -> None:
    expected: set[tuple[str, int, str]] = set()
    for path in SHAPES.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECT_RE.search(line)
            if match:
                expected.update((path.name, number, code) for code in match.group(1).split())
    report = lint_paths([str(SHAPES)])
    assert report.errors == []
    assert {(Path(d.path).name, d.line, d.code) for d in report.diagnostics} == expected


def test_without_the_setup_lint_flags_the_views_that_wait(tmp_path: Path) -> None:
    copy = tmp_path / "tests" / "pitfalls" / "shapes"  # the same module paths as the imports
    shutil.copytree(SHAPES, copy, ignore=shutil.ignore_patterns("setup_cioguard.py", "__pycache__"))
    report = lint_paths([str(copy)])
    blocking = sorted((Path(d.path).name, d.line) for d in report.diagnostics if d.code == "CIO007")
    assert blocking == [("views.py", 19), ("views.py", 28), ("views.py", 29)]
