"""Background work: an executor over rows, a Celery task, and the bulk script that went wrong."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from celery import Celery
from customerio import CustomerIO
from tests.pitfalls.shapes.clients import _credentials, get_cio

log = logging.getLogger(__name__)
celery_app = Celery("shapes", broker="memory://", backend="cache+memory://")
celery_app.conf.task_always_eager = True


def suppress_one(user_id: str) -> None:
    get_cio().suppress(user_id)


def suppress_all(user_ids: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(suppress_one, user_ids))


@celery_app.task
def sync_plan(user_id: str, plan: str) -> None:
    get_cio().identify(user_id, plan=plan, _update=True)


def delete_one_badly(user_id: str) -> None:
    site_id, api_key, host, port = _credentials()
    cio = CustomerIO(site_id, api_key, host=host, port=port)  # expect: CIO009
    cio.delete(user_id)


def delete_all_badly(user_ids: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(delete_one_badly, user_ids))


def legacy_order_paid(user_id: str, total: float) -> None:
    try:
        get_cio().track(customer_id=user_id, name="order_paid", total=total)  # expect: CIO015
    except Exception:  # what the real integrations do: the TypeError is swallowed
        log.debug("tracking failed", exc_info=True)
