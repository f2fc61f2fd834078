"""Pitfall 7 in sync web views: Flask, Django, Pyramid and Starlette handlers waiting on Customer.io."""

from functools import lru_cache

from customerio import CustomerIO
from django.http import HttpRequest, HttpResponse
from flask import Flask
from pyramid.view import view_config
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

app = Flask(__name__)


@lru_cache(maxsize=1)
def get_cio() -> CustomerIO:
    return CustomerIO("site", "key")


@app.route("/signup", methods=["POST"])
def signup() -> str:
    get_cio().identify("usr_1", email="a@example.com")  # expect: CIO007
    return "ok"


def django_checkout(request: HttpRequest) -> HttpResponse:
    get_cio().track("usr_1", "checkout_completed")  # expect: CIO007
    return HttpResponse("ok")


@view_config(route_name="home")
def pyramid_home(context: object, request: object) -> dict[str, str]:
    cio = get_cio()
    cio.track("usr_1", "home_viewed")  # expect: CIO007
    return {}


def record_visit(user_id: str) -> None:
    get_cio().track(user_id, "visited")  # expect: CIO007


def starlette_home(request: object) -> PlainTextResponse:
    record_visit("usr_1")
    return PlainTextResponse("ok")


starlette_app = Starlette(routes=[Route("/", starlette_home)])
