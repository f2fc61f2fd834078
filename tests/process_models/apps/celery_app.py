"""A Celery app on the filesystem broker (no server) whose tasks send events and never flush.

The broker folder is ``$CELERY_DATA``; ``$CELERY_DATA/started/<worker>`` marks a task that began.
Only ``cioguard.instrument()`` at import, as an app would do in its tasks module: the prefork
children inherit it. ``APP_WITHOUT_EXIT_HOOKS=1`` disables cioguard's exit hooks (the control run);
``APP_INSTRUMENT_IN_CHILD=1`` instruments each child from ``worker_process_init`` instead.

Run with ``celery -A celery_app worker --pool=prefork --max-tasks-per-child=1``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import work
from celery import Celery

import cioguard

DATA = Path(os.environ["CELERY_DATA"])

if os.environ.get("APP_WITHOUT_EXIT_HOOKS"):
    import cioguard.exits

    cioguard.exits.install = lambda: None

if os.environ.get("APP_INSTRUMENT_IN_CHILD"):
    from celery.signals import worker_process_init

    @worker_process_init.connect
    def instrument_child(**_: object) -> None:
        cioguard.instrument()

else:
    cioguard.instrument()


def broker_options(data: Path) -> dict[str, object]:
    """The filesystem transport's folders (producer and worker share one), polled every 0.1 s."""
    queue = str(data / "queue")
    return {
        "data_folder_in": queue,
        "data_folder_out": queue,
        "processed_folder": str(data / "processed"),
        "control_folder": str(data / "control"),  # not the current directory
        "store_processed": False,
        "polling_interval": 0.1,
    }


app = Celery("celery_app", broker="filesystem://")
app.conf.update(
    broker_transport_options=broker_options(DATA),
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="celery_app.send")
def send(worker: int, count: int, delay: float = 0.0) -> None:
    """Mark the task started, wait ``delay`` s (so a shutdown can arrive), then send the events."""
    (DATA / "started" / str(worker)).touch()
    time.sleep(delay)
    work.send(worker, count)
