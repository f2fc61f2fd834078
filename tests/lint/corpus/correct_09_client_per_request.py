"""Pitfall 9, correct: one client, created once and reused."""

import functools
import os

from customerio import CustomerIO
from fastapi import FastAPI

import cioguard

cioguard.instrument()  # background delivery: the sync view below does not wait for Customer.io
app = FastAPI()
cio = CustomerIO(os.environ["SITE_ID"], os.environ["TRACK_KEY"])
_lazy: CustomerIO | None = None


@functools.lru_cache(maxsize=1)
def cached_client() -> CustomerIO:
    return CustomerIO("site", "key")


def lazy_client() -> CustomerIO:
    global _lazy
    if _lazy is None:
        _lazy = CustomerIO("site", "key")
    return _lazy


class Service:
    def __init__(self) -> None:
        self.cio = CustomerIO("site", "key")


service = Service()


@app.post("/track")
def track(user_id: str) -> dict[str, bool]:
    cio.track(user_id, "tracked")
    cached_client().track(user_id, "tracked_again")
    lazy_client().track(user_id, "tracked_lazily")
    service.cio.track(user_id, "tracked_by_service")
    return {"ok": True}
