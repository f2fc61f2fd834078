"""Pitfall 7 in sync web views, correct: the project configures cioguard, so calls only enqueue."""

from functools import lru_cache

from customerio import CustomerIO
from django.http import HttpRequest, HttpResponse
from flask import Flask

import cioguard

cioguard.instrument()
app = Flask(__name__)


@lru_cache(maxsize=1)
def get_cio() -> CustomerIO:
    return CustomerIO("site", "key")


@app.route("/signup", methods=["POST"])
def signup() -> str:
    get_cio().identify("usr_1", email="a@example.com")
    return "ok"


def django_checkout(request: HttpRequest) -> HttpResponse:
    get_cio().track("usr_1", "checkout_completed")
    return HttpResponse("ok")


def nightly_report() -> None:  # not a view: a worker may wait
    get_cio().track("usr_1", "report_sent")
