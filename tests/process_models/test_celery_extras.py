"""``cioguard.celery`` extras: ``flush_after_task`` delivers before the task is reported done, and
the per-task flush metrics count it. Tasks run eagerly in the test process (Celery's own tracer
and signals, no broker) against the emulator, with default options.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import celery
import pytest
from prometheus_client import CollectorRegistry

import cioguard
import cioguard.celery
from cioguard.testing import FakeCustomerIO

EVENTS = 30


@pytest.fixture
def app() -> Iterator[celery.Celery]:
    application = celery.Celery("extras", broker="memory://")
    application.conf.update(task_always_eager=True, task_store_eager_result=False)
    yield application
    cioguard.celery.teardown()
    application.close()


@pytest.fixture
def registry(fake: FakeCustomerIO) -> Iterator[CollectorRegistry]:
    """Instrumented with defaults (pitfalls off: synthetic ids); a registry of the test's own."""
    metrics = CollectorRegistry()
    cioguard.instrument(track_url=fake.track_url, pitfalls="off", registry=CollectorRegistry())
    yield metrics
    cioguard.uninstrument(timeout=1.0)


def make_task(app: celery.Celery) -> Any:
    @app.task(name="extras.signup")
    def signup(user: str) -> str:
        from customerio import CustomerIO

        cio = CustomerIO("site-id", "track-key")
        for i in range(EVENTS):
            cio.track(user, "task_event", data={"seq": i})
        return "done"

    return signup


def sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name, {"task": "extras.signup"})
    return 0.0 if value is None else value


def test_flush_after_task_delivers_before_the_task_returns(
    fake: FakeCustomerIO, app: celery.Celery, registry: CollectorRegistry
) -> None:
    cioguard.celery.setup(flush_after_task=True, registry=registry)
    signup = make_task(app)
    assert signup.delay("u1").get() == "done"
    assert len(fake.events) == EVENTS
    assert sample(registry, "customerio_celery_task_flush_seconds_count") == 1
    assert sample(registry, "customerio_celery_task_flush_incomplete_total") == 0


def test_without_the_option_nothing_is_connected(
    fake: FakeCustomerIO, app: celery.Celery, registry: CollectorRegistry
) -> None:
    cioguard.celery.setup(registry=registry)
    signup = make_task(app)
    assert signup.delay("u2").get() == "done"
    assert sample(registry, "customerio_celery_task_flush_seconds_count") == 0  # no flush ran
    assert cioguard.flush(5.0)
    assert len(fake.events) == EVENTS


def test_flush_that_times_out_is_counted(app: celery.Celery, registry: CollectorRegistry) -> None:
    cioguard.uninstrument(timeout=0.0)
    with FakeCustomerIO(https=False) as fake:
        fake.stall_next(10_000, seconds=30.0)  # every request held, never answered
        cioguard.instrument(track_url=fake.track_url, pitfalls="off", registry=CollectorRegistry())
        cioguard.celery.setup(flush_after_task=True, flush_timeout=0.3, registry=registry)
        signup = make_task(app)
        assert signup.delay("u3").get() == "done"  # the task's result is untouched
        cioguard.uninstrument(timeout=0.0)
    assert sample(registry, "customerio_celery_task_flush_incomplete_total") == 1


@pytest.mark.parametrize("bad", [-1.0, float("nan"), True])
def test_invalid_timeout_raises(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"cioguard\.celery\.setup"):
        cioguard.celery.setup(flush_after_task=True, flush_timeout=bad)
