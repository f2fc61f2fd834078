"""Django-style views (request first) and a Flask-style handler using the cached client."""

from __future__ import annotations

from typing import Any

from tests.pitfalls.shapes.clients import EVENTS, Notifier, get_cio, lazy_cio

notifier = Notifier()


def signup(request: Any) -> dict[str, str]:
    user_id, email = request["user_id"], request["email"]
    notifier.welcome(user_id, email)
    return {"status": "ok"}


def checkout(request: Any) -> dict[str, str]:
    lazy_cio().track(
        request["user_id"],
        EVENTS.order_completed,
        data={"order_id": request["order_id"], "total": request["total"], "coupon": None},
    )
    return {"status": "ok"}


def delete_account(request: Any) -> dict[str, str]:
    get_cio().track(request["user_id"], EVENTS.account_deleted, data={})
    get_cio().delete(request["user_id"])
    return {"status": "deleted"}
