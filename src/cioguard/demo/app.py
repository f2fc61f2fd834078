"""The demo's web shop: a small Starlette app whose handlers call the ``customerio`` SDK directly.

Nothing here knows about cioguard except the middleware line: the same handlers run first against
the plain blocking SDK, then with ``cioguard.instrument()`` — exactly the change a user makes. Three
handlers contain deliberate Customer.io mistakes so the pitfall warnings have something to show.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from cioguard.asgi import CioGuardMiddleware
from cioguard.webhooks import WebhookReceiver


def build_app(client: Any, api: Any, receiver: WebhookReceiver) -> Any:
    """The shop: ``client`` is a ``customerio.CustomerIO``, ``api`` a ``customerio.APIClient``."""

    def signup(request: Request) -> JSONResponse:
        user, plan = request.query_params["user"], request.query_params.get("plan", "free")
        client.identify(user, email=f"{user}@example.com", created_at=int(time.time()), plan=plan)
        client.track(
            user, "signed_up", data={"plan": plan, "source": request.query_params.get("source", "web")}
        )
        return JSONResponse({"ok": True})

    def page(request: Request) -> JSONResponse:
        client.pageview(request.query_params["user"], request.path_params["name"])
        return JSONResponse({"ok": True})

    def checkout(request: Request) -> JSONResponse:
        user = request.query_params["user"]
        total = float(request.query_params.get("total", "0"))
        order = request.query_params.get("order", "o-1")
        client.track(user, "checkout_completed", data={"order_id": order, "total": total})
        receipt = api.send_email(
            {
                "transactional_message_id": "receipt",
                "to": f"{user}@example.com",
                "identifiers": {"id": user},
                "message_data": {"order_id": order, "total": total},
            }
        )
        return JSONResponse({"ok": True, "delivery_id": receipt.get("delivery_id")})

    # -- deliberate mistakes (each is a Customer.io pitfall cioguard reports) -------------------

    def legacy_import(request: Request) -> JSONResponse:
        user = request.query_params["user"]
        # CIO002: milliseconds where Customer.io expects Unix seconds.
        client.identify(user, email=f"{user}@example.com", created_at=int(time.time() * 1000))  # noqa: CIO002
        return JSONResponse({"ok": True})

    def legacy_signup(request: Request) -> JSONResponse:
        email = request.query_params["email"]
        # CIO004: the email address as the customer id.
        client.identify(email, email=email)  # noqa: CIO004
        return JSONResponse({"ok": True})

    def product(request: Request) -> JSONResponse:
        sku = request.path_params["sku"]
        # CIO006: an id inside the event name instead of in its data.
        client.track(request.query_params["user"], f"viewed_{sku}", data={})  # noqa: CIO006
        return JSONResponse({"ok": True})

    def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/signup", signup, methods=["POST"]),
            Route("/pages/{name}", page),
            Route("/checkout", checkout, methods=["POST"]),
            Route("/legacy/import", legacy_import, methods=["POST"]),
            Route("/legacy/signup", legacy_signup, methods=["POST"]),
            Route("/products/{sku}", product),
            Route("/health", health),
            Mount("/webhooks/customerio", app=receiver.asgi_app()),
        ]
    )
    return CioGuardMiddleware(app, metrics_path="/metrics")
