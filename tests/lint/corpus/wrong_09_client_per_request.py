"""Pitfall 9: a new SDK client built for every request."""

import os

from customerio import CustomerIO
from fastapi import Depends, FastAPI
from flask import Flask

app = FastAPI()
flask_app = Flask(__name__)


@app.post("/track")
def track(user_id: str) -> dict[str, bool]:
    cio = CustomerIO(os.environ["SITE_ID"], os.environ["TRACK_KEY"])  # expect: CIO009
    cio.track(user_id, "tracked")  # expect: CIO007
    return {"ok": True}


def make_client() -> CustomerIO:
    return CustomerIO("site", "key")  # expect: CIO009


@flask_app.route("/signup", methods=["POST"])
def signup() -> str:
    make_client().identify("usr_1", email="a@example.com")  # expect: CIO007
    return "ok"


def get_cio() -> CustomerIO:
    return CustomerIO("site", "key")  # expect: CIO009


@app.get("/ping")
def ping(cio: CustomerIO = Depends(get_cio)) -> str:  # noqa: B008
    cio.track("usr_1", "pinged")  # expect: CIO007
    return "pong"


class Notifier:
    def __init__(self) -> None:
        self.cio = CustomerIO("site", "key")  # expect: CIO009

    def welcome(self, user_id: str) -> None:
        self.cio.track(user_id, "welcome_sent")  # expect: CIO007 (runs per request via Notifier().welcome)


@app.post("/welcome")
def welcome(user_id: str) -> None:
    Notifier().welcome(user_id)


def django_view(request: object) -> None:
    with CustomerIO("site", "key") as cio:  # expect: CIO009
        cio.track("usr_1", "viewed")  # expect: CIO007


def nightly(user_ids: list[str]) -> None:
    for user_id in user_ids:
        client = CustomerIO("site", "key")  # expect: CIO009
        client.suppress(user_id)  # expect: CIO011


class InviteView:  # a Django FormView: form_valid runs per request (self.request holds it)
    def form_valid(self, form: object) -> None:
        cio = CustomerIO("site", "key")  # expect: CIO009
        cio.identify("t1", email="t1@example.com")  # expect: CIO007
