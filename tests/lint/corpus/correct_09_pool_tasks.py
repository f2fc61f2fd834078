"""Pitfall 9 per item, correct: one client shared by every task and thread."""

from concurrent.futures import ThreadPoolExecutor
from functools import cache

from celery import shared_task
from customerio import CustomerIO

cio = CustomerIO("site", "key")


@cache
def client() -> CustomerIO:
    return CustomerIO("site", "key")


def delete_one(user_id: str) -> None:
    cio.delete(user_id)


def bulk_delete(user_ids: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(delete_one, user_ids))


@shared_task
def send_welcome(user_id: str) -> None:
    client().track(user_id, "welcome_sent")
