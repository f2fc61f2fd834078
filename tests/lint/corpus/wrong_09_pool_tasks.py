"""Pitfall 9 per item: a client built in every pool task, thread or task-queue job."""

import threading
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from customerio import CustomerIO


def delete_one(user_id: str) -> None:
    cio = CustomerIO("site", "key")  # expect: CIO009
    cio.delete(user_id)


def bulk_delete(user_ids: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(delete_one, user_ids))


def suppress_one(user_id: str) -> None:
    CustomerIO("site", "key").suppress(user_id)  # expect: CIO009


def suppress_later(user_id: str) -> None:
    threading.Thread(target=suppress_one, args=(user_id,)).start()


@shared_task
def send_welcome(user_id: str) -> None:
    CustomerIO("site", "key").track(user_id, "welcome_sent")  # expect: CIO009
