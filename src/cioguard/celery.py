"""Optional Celery extras: deliver before each task is reported done, and per-task flush metrics.

Delivery from Celery workers needs none of this: ``cioguard.instrument()`` in the tasks module is
enough (prefork children flush as they exit, warm shutdown included; see :mod:`cioguard.exits`).
Use this module when a task must not finish before its events are delivered::

    import cioguard
    import cioguard.celery

    cioguard.instrument()
    cioguard.celery.setup(flush_after_task=True, flush_timeout=5.0)

:func:`setup` connects to Celery's ``task_postrun`` signal (idempotent; :func:`teardown`
disconnects). With ``flush_after_task`` every task ends with ``cioguard.flush(flush_timeout)`` in
the process that ran it, and two metrics say what that cost, per task name:

- ``customerio_celery_task_flush_seconds{task}`` (histogram): how long the flush took;
- ``customerio_celery_task_flush_incomplete_total{task}``: flushes that reached ``flush_timeout``
  with operations still queued (they stay queued and are delivered later).

Metrics go to ``registry`` (default: prometheus_client's global one; multiprocess mode works as
for the other metrics); ``metrics=False`` skips them. Requires ``celery`` (``cioguard[celery]``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import signals  # type: ignore[import-untyped]
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from cioguard.lifecycle import flush

logger = logging.getLogger("cioguard")

_DISPATCH_UID = "cioguard.celery.task_postrun"
#: Flush durations: from a batch already gone (ms) to a flush that used up a 10 s timeout.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = Histogram(
            "customerio_celery_task_flush_seconds",
            "Seconds the flush after a Celery task took",
            ["task"],
            registry=registry,
            buckets=_BUCKETS,
        )
        self.incomplete = Counter(
            "customerio_celery_task_flush_incomplete",
            "Flushes after a Celery task that reached flush_timeout with operations still queued",
            ["task"],
            registry=registry,
        )


_lock = threading.Lock()
#: registry id -> metrics: a registry refuses the same metric name twice.
_metrics_by_registry: dict[int, _Metrics] = {}


def setup(
    *,
    flush_after_task: bool = False,
    flush_timeout: float = 5.0,
    metrics: bool = True,
    registry: CollectorRegistry | None = None,
) -> None:
    """Connect the extras to Celery's signals; calling it again replaces the previous settings.

    A ``flush_timeout`` that is negative or NaN raises ``ValueError`` here.
    """
    if isinstance(flush_timeout, bool) or not isinstance(flush_timeout, int | float):
        raise ValueError(f"cioguard.celery.setup: flush_timeout must be seconds, got {flush_timeout!r}")
    if math.isnan(flush_timeout) or flush_timeout < 0:
        raise ValueError(f"cioguard.celery.setup: flush_timeout must be >= 0, got {flush_timeout!r}")
    teardown()
    if not flush_after_task:
        return
    recorded = _metrics_for(registry or REGISTRY) if metrics else None
    signals.task_postrun.connect(
        _postrun_handler(float(flush_timeout), recorded), weak=False, dispatch_uid=_DISPATCH_UID
    )


def teardown() -> None:
    """Disconnect what :func:`setup` connected (no-op when nothing is)."""
    signals.task_postrun.disconnect(dispatch_uid=_DISPATCH_UID)


def _metrics_for(registry: CollectorRegistry) -> _Metrics:
    with _lock:
        found = _metrics_by_registry.get(id(registry))
        if found is None:
            found = _metrics_by_registry[id(registry)] = _Metrics(registry)
        return found


def _postrun_handler(timeout: float, recorded: _Metrics | None) -> Callable[..., None]:
    def on_task_postrun(sender: Any = None, task: Any = None, **_: Any) -> None:
        # Celery logs and swallows a receiver's exception; never raise anyway.
        try:
            began = time.perf_counter()
            done = flush(timeout)
            if recorded is not None:
                name = str(getattr(task or sender, "name", None) or "unknown")
                recorded.seconds.labels(task=name).observe(time.perf_counter() - began)
                if not done:
                    recorded.incomplete.labels(task=name).inc()
        except Exception as exc:
            logger.error("cioguard.celery: flush after the task failed: %r", exc)

    return on_task_postrun
